/**
 * What an audit event asked the authorizer, as audit2rbac reads it (its `eventToAttributes`):
 * the user (the impersonated one when there is one), the verb, and either the object
 * reference (a resource request) or the path (a non-resource request). Identical requests
 * are kept once with a count, so memory grows with distinct requests, not with the log.
 *
 * @module
 */
import type { Event } from "../../pipeline/core/event.ts";

/**
 * The attributes of one request, as an authorizer sees them.
 *
 * @example
 * ```ts
 * const a: Attributes = {
 *   user: "alice", groups: ["system:authenticated"], verb: "get", resourceRequest: true,
 *   namespace: "ns1", name: "pod1", apiGroup: "", apiVersion: "v1", resource: "pods",
 *   subresource: "", path: "",
 * };
 * ```
 */
export interface Attributes {
  readonly user: string;
  readonly groups: readonly string[];
  readonly verb: string;
  readonly resourceRequest: boolean;
  readonly namespace: string;
  readonly name: string;
  readonly apiGroup: string;
  /** Kept because audit2rbac widens only requests equal in every other attribute. */
  readonly apiVersion: string;
  readonly resource: string;
  readonly subresource: string;
  /** The URL path of a non-resource request ("" for a resource request). */
  readonly path: string;
}

/**
 * The user a request is authorized as: the impersonated user when there is one.
 *
 * @example
 * ```ts
 * effectiveUser(event).username; // "bob" when system:admin impersonated bob
 * ```
 */
export function effectiveUser(event: Event): { username?: string; groups?: string[] } {
  return event.impersonatedUser ?? event.user;
}

/**
 * The attributes of a non-resource request (a URL path, no object) by `who`.
 *
 * @example
 * ```ts
 * nonResourceAttributes({ user: "bob", groups: [], verb: "get" }, "/healthz").path; // "/healthz"
 * ```
 */
export function nonResourceAttributes(
  who: Pick<Attributes, "user" | "groups" | "verb">,
  path: string,
): Attributes {
  return {
    ...who,
    resourceRequest: false,
    namespace: "",
    name: "",
    apiGroup: "",
    apiVersion: "",
    resource: "",
    subresource: "",
    path,
  };
}

/**
 * The attributes of an event's request. A create's name is cleared: the authorizer is never
 * asked about it (the name is in the body), though the event of an accepted create has it.
 * The query string is left out of a non-resource path: the authorizer sees the path alone,
 * and a rule for `/metrics?x=1` would never match (audit2rbac keeps it; we do not).
 *
 * @example
 * ```ts
 * const a = eventToAttributes(event);
 * if (!a.resourceRequest) console.log(a.path);
 * ```
 */
export function eventToAttributes(event: Event): Attributes {
  const who = effectiveUser(event);
  const ref = event.objectRef;
  const base = { user: who.username ?? "", groups: who.groups ?? [], verb: event.verb ?? "" };
  if (ref === undefined || ref === null) {
    const uri = event.requestURI ?? "";
    const q = uri.indexOf("?");
    return nonResourceAttributes(base, q < 0 ? uri : uri.slice(0, q));
  }
  return {
    ...base,
    resourceRequest: true,
    namespace: ref.namespace ?? "",
    name: event.verb === "create" ? "" : ref.name ?? "",
    apiGroup: ref.apiGroup ?? "",
    apiVersion: ref.apiVersion ?? "",
    resource: ref.resource ?? "",
    subresource: ref.subresource ?? "",
    path: "",
  };
}

/**
 * A key equal for equal attributes.
 *
 * @example
 * ```ts
 * attributesKey(a) === attributesKey({ ...a }); // true
 * ```
 */
export function attributesKey(a: Attributes): string {
  return JSON.stringify([
    a.user,
    a.groups,
    a.verb,
    a.resourceRequest,
    a.namespace,
    a.name,
    a.apiGroup,
    a.apiVersion,
    a.resource,
    a.subresource,
    a.path,
  ]);
}

/**
 * One distinct request and how many times it was made.
 *
 * @example
 * ```ts
 * const r: CountedRequest = { attrs, count: 3 };
 * ```
 */
export interface CountedRequest {
  readonly attrs: Attributes;
  /** Requests made (not events: one request is logged once per stage). */
  readonly count: number;
}

/** Events of one request, by stage. */
interface StageCounts {
  readonly attrs: Attributes;
  received: number;
  started: number;
  /** ResponseComplete and Panic: how a request ends. */
  ended: number;
}

/**
 * Distinct requests in the order first seen, with how many times each was made. A request is
 * logged once per stage (RequestReceived, ResponseStarted for long-running ones, then
 * ResponseComplete or Panic), and a policy may omit stages, so the count of a request is the
 * largest count of any one stage (received, started, or ended), without holding audit IDs.
 *
 * @example
 * ```ts
 * const set = new RequestSet();
 * set.add(eventToAttributes(event), event.stage);
 * console.log(set.events, set.requests().length);
 * ```
 */
export class RequestSet {
  readonly #byKey = new Map<string, StageCounts>();
  /** Events added. */
  events = 0;

  add(attrs: Attributes, stage: string): void {
    this.events++;
    const key = attributesKey(attrs);
    let seen = this.#byKey.get(key);
    if (seen === undefined) {
      this.#byKey.set(key, seen = { attrs, received: 0, started: 0, ended: 0 });
    }
    if (stage === "RequestReceived") seen.received++;
    else if (stage === "ResponseStarted") seen.started++;
    else seen.ended++;
  }

  requests(): CountedRequest[] {
    return [...this.#byKey.values()].map((s) => ({
      attrs: s.attrs,
      count: Math.max(s.received, s.started, s.ended),
    }));
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * audit2rbac's order of requests, broader first, so a broad rule is made before the narrow
 * requests it covers: non-resource before resource; cluster-scoped before namespaced; unnamed
 * before named; list before get; then by group, resource, subresource, namespace, name, verb
 * (non-resource: by verb, path). Use with a stable sort.
 *
 * @example
 * ```ts
 * requests.sort(compareRequests);
 * ```
 */
export function compareRequests(a: Attributes, b: Attributes): number {
  if (a.resourceRequest !== b.resourceRequest) return a.resourceRequest ? 1 : -1;
  if (!a.resourceRequest) return cmp(a.verb, b.verb) || cmp(a.path, b.path);
  const ca = a.namespace === "", cb = b.namespace === "";
  if (ca !== cb) return ca ? -1 : 1;
  const ua = a.name === "", ub = b.name === "";
  if (ua !== ub) return ua ? -1 : 1;
  if (a.verb === "list" && b.verb === "get") return -1;
  if (a.verb === "get" && b.verb === "list") return 1;
  return cmp(a.apiGroup, b.apiGroup) || cmp(a.resource, b.resource) ||
    cmp(a.subresource, b.subresource) || cmp(a.namespace, b.namespace) ||
    cmp(a.name, b.name) || cmp(a.verb, b.verb);
}
