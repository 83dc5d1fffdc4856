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
  const dropRequest = target < REQUEST && event.requestObject !== undefined;
  const dropResponse = target < REQUEST_RESPONSE && event.responseObject !== undefined;
  let request = event.requestObject;
  let response = event.responseObject;
  if (result.omitManagedFields) {
    // A patch body is the raw patch the client sent, which kube-apiserver logs untouched.
    if (!dropRequest && event.verb !== "patch") request = stripManagedFields(request);
    if (!dropResponse) response = stripManagedFields(response);
  }
  if (
    target === have && !dropRequest && !dropResponse && request === event.requestObject &&
    response === event.responseObject
  ) {
    return event;
  }
  const out: Event = { ...event };
  // An event already at None stays there: the policy never raises a level.
  if (target < have) out.level = LEVELS[target];
  if (dropRequest) delete out.requestObject;
  else if (request !== event.requestObject) out.requestObject = request;
  if (dropResponse) delete out.responseObject;
  else if (response !== event.responseObject) out.responseObject = response;
  return out;
}
