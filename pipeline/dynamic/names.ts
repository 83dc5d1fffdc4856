/**
 * How the sinks AuditSink objects become are named, apart from the rest of `sink.ts` (which
 * loads `node:crypto` and the config schema), so the daemon and its ops server can tell those
 * sinks apart without loading it when no AuditSink folder is configured.
 *
 * @module
 */

/**
 * Sink names of AuditSinks start with this.
 *
 * @example
 * ```ts
 * AUDIT_SINK_PREFIX + sink.metadata.name; // "auditsink/team-a"
 * ```
 */
export const AUDIT_SINK_PREFIX = "auditsink/";
