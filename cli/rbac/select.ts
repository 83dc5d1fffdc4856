/**
 * Which events count, as audit2rbac decides: those whose user (the impersonated user when
 * the request impersonated one) is the subject, and with `-n`, whose object is in that
 * namespace. Every stage and every response counts: the request's attributes are the same
 * at each stage, and a refused request is one the subject needs a grant for.
 *
 * @module
 */
import type { Event } from "../../pipeline/core/event.ts";
import { effectiveUser } from "./attributes.ts";

/**
 * Whether `event` counts for `user` (and `namespace`, "" for any).
 *
 * @example
 * ```ts
 * if (eventCounts(event, "alice", "")) requests.add(eventToAttributes(event));
 * ```
 */
export function eventCounts(event: Event, user: string, namespace: string): boolean {
  if (effectiveUser(event).username !== user) return false;
  return namespace === "" || event.objectRef?.namespace === namespace;
}
