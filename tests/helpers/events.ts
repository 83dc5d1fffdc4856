/**
 * Small events for unit tests of stages, where the content does not matter.
 *
 * @module
 */
import type { Envelope } from "../../pipeline/core/envelope.ts";
import type { Event } from "../../pipeline/core/event.ts";

/** A minimal valid Metadata event with the given auditID. */
export function testEvent(auditID: string, extra: Partial<Event> = {}): Event {
  return {
    level: "Metadata",
    auditID,
    stage: "ResponseComplete",
    requestURI: "/api",
    verb: "get",
    user: { username: "alice" },
    requestReceivedTimestamp: null,
    stageTimestamp: null,
    ...extra,
  };
}

/** An envelope of {@linkcode testEvent}. */
export function testEnvelope(auditID: string, extra: Partial<Event> = {}): Envelope {
  return { event: testEvent(auditID, extra) };
}

/**
 * `n` pod creations by alice, numbered from `from`: auditIDs `<prefix>-00000`, zero-padded so
 * their order sorts; `over` replaces or adds fields in each.
 *
 * @example
 * ```ts
 * const batch = numberedEvents("lc", 0, 10, { level: "Metadata" });
 * ```
 */
export function numberedEvents(
  prefix: string,
  from: number,
  n: number,
  over: Record<string, unknown> = {},
): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, k) => ({
    level: "Metadata",
    auditID: `${prefix}-${String(from + k).padStart(5, "0")}`,
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods",
    verb: "create",
    user: { username: "alice" },
    objectRef: { resource: "pods", namespace: "default", apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
    stageTimestamp: "2024-03-01T12:34:56.801234Z",
    ...over,
  }));
}
