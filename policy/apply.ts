/**
 * Applying a policy result to a finished event, as the old dynamic backend's enforcement did
 * (`pkg/audit/policy/enforce.go`, removed in 1.25): drop omitted stages and level None, lower
 * (never raise) the level and drop what the lower level does not keep, and strip
 * `metadata.managedFields` when asked. Events are shared between sinks, so the input is
 * never changed: a changed event is a shallow copy that copies only the paths it changes.
 *
 * @module
 */
import { type Event, levelRank, LEVELS } from "../pipeline/core/event.ts";
import type { PolicyResult } from "./result.ts";
import { hasValue } from "../pipeline/core/decode_fast.ts";

const REQUEST = levelRank("Request");
const REQUEST_RESPONSE = levelRank("RequestResponse");

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasManagedFields(o: unknown): boolean {
  return isObj(o) && isObj(o.metadata) && "managedFields" in o.metadata;
}

/** `o` without `metadata.managedFields`, or `o` itself when it has none. */
function withoutOwn(o: unknown): unknown {
  if (!hasManagedFields(o)) return o;
  const { managedFields: _, ...metadata } = (o as Obj).metadata as Obj;
  return { ...(o as Obj), metadata };
}

/** A new array when some element changed, else `list` itself. */
function mapChanged(list: unknown[], f: (v: unknown) => unknown): unknown[] {
  let out: unknown[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const v = f(list[i]);
    if (v !== list[i]) (out ??= list.slice())[i] = v;
  }
  return out ?? list;
}

function tableRow(row: unknown): unknown {
  if (!isObj(row) || !hasManagedFields(row.object)) return row;
  return { ...row, object: withoutOwn(row.object) };
}

/**
 * An object without `metadata.managedFields` on itself, each item of a list (`items`) and
 * each row object of a Table (`rows[].object`); `o` itself when none of them had any.
 *
 * @example
 * ```ts
 * stripManagedFields({ metadata: { name: "a", managedFields: [] } }); // { metadata: { name: "a" } }
 * ```
 */
export function stripManagedFields(o: unknown): unknown {
  if (!isObj(o)) return o;
  let out = withoutOwn(o) as Obj;
  if (Array.isArray(o.items)) {
    const items = mapChanged(o.items, withoutOwn);
    if (items !== o.items) out = { ...out, items };
  }
  if (Array.isArray(o.rows)) {
    const rows = mapChanged(o.rows, tableRow);
    if (rows !== o.rows) out = { ...out, rows };
  }
  return out;
}

/**
 * Applies a policy result to an event. Returns `"omitted_stage"` when the event's stage is
 * omitted, `"policy"` when the level is None, the same event when nothing changes, or a new
 * event: level lowered to the result's when that is lower (Metadata drops `requestObject` and
 * `responseObject`, Request drops `responseObject`), and with `omitManagedFields`, the kept
 * objects without `metadata.managedFields` (a patch's request body is left as sent). The
 * event's key order is kept.
 *
 * @example
 * ```ts
 * const out = applyPolicy(evaluate(compiled, event), event);
 * if (typeof out !== "string") write(out);
 * ```
 */
export function applyPolicy(
  result: PolicyResult,
  event: Event,
): Event | "policy" | "omitted_stage" {
  if (result.omitStages.length > 0 && result.omitStages.includes(event.stage)) {
    return "omitted_stage";
  }
  if (result.level === "None") return "policy";
  const have = levelRank(event.level);
  const target = Math.min(have, levelRank(result.level));
  // Whether a body is there, without parsing one the decoder left to parse on first read.
  const dropRequest = target < REQUEST && hasValue(event, "requestObject");
  const dropResponse = target < REQUEST_RESPONSE && hasValue(event, "responseObject");
  let request: unknown = undefined;
  let response: unknown = undefined;
  let requestChanged = false;
  let responseChanged = false;
  if (result.omitManagedFields) {
    // A patch body is the raw patch the client sent, which kube-apiserver logs untouched.
    if (!dropRequest && event.verb !== "patch") {
      request = stripManagedFields(event.requestObject);
      requestChanged = request !== event.requestObject;
    }
    if (!dropResponse) {
      response = stripManagedFields(event.responseObject);
      responseChanged = response !== event.responseObject;
    }
  }
  if (target === have && !dropRequest && !dropResponse && !requestChanged && !responseChanged) {
    return event;
  }
  const out = copyWithout(event, dropRequest, dropResponse);
  // An event already at None stays there: the policy never raises a level.
  if (target < have) out.level = LEVELS[target];
  if (requestChanged) out.requestObject = request;
  if (responseChanged) out.responseObject = response;
  return out;
}

/**
 * A shallow copy of `event` in its key order, without the bodies to drop (never read). A
 * kept body the decoder left unparsed stays unparsed: the copy reads it through from the
 * event the first time something asks (a lowered event written from its bytes never does).
 */
function copyWithout(event: Event, dropRequest: boolean, dropResponse: boolean): Event {
  const from = event as unknown as Obj;
  const out: Obj = {};
  for (const key of Object.keys(from)) {
    if (key === "requestObject" || key === "responseObject") {
      if (key === "requestObject" ? dropRequest : dropResponse) continue;
      readThrough(out, from, key);
    } else if (key === "__proto__") {
      // As spreading defines it: an own "__proto__" key stays a key, not the prototype.
      Object.defineProperty(out, key, {
        value: from[key],
        writable: true,
        enumerable: true,
        configurable: true,
      });
    } else out[key] = from[key];
  }
  return out as unknown as Event;
}

/** `out[key]` as `from[key]`, read from `from` on first use (then a plain value). */
function readThrough(out: Obj, from: Obj, key: string): void {
  const d = Object.getOwnPropertyDescriptor(from, key);
  if (d === undefined || d.get === undefined) {
    out[key] = from[key];
    return;
  }
  const settle = (value: unknown) =>
    Object.defineProperty(out, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  Object.defineProperty(out, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = from[key];
      settle(value);
      return value;
    },
    set: settle,
  });
}
