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
