/**
 * The `audit.k8s.io/v1` wire types, with the JSON field names kube-apiserver writes
 * (k8s.io/apiserver `pkg/apis/audit/v1/types.go`), and the check that tells an event from
 * anything else.
 *
 * @module
 */

/** How much of a request an event records, lowest first. */
export type Level = "None" | "Metadata" | "Request" | "RequestResponse";

/** The point in a request's life an event was written at. */
export type Stage = "RequestReceived" | "ResponseStarted" | "ResponseComplete" | "Panic";

/** Every level, in rank order: the index is the rank. */
export const LEVELS: readonly Level[] = ["None", "Metadata", "Request", "RequestResponse"];

/** Every stage, in the order a request passes them (Panic last). */
export const STAGES: readonly Stage[] = [
  "RequestReceived",
  "ResponseStarted",
  "ResponseComplete",
  "Panic",
];

/** The API group and version of every audit object auditpipe reads or writes. */
export const AUDIT_API_VERSION = "audit.k8s.io/v1";

/**
 * Events written by clusters before 1.24 (and still found in archives) carry this version.
 * Its Event has the same fields as v1 plus `metadata` and `timestamp`, so it is read as v1
 * and written as v1.
 */
const LEGACY_API_VERSION = "audit.k8s.io/v1beta1";

/** `authentication.k8s.io/v1` UserInfo. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** The object a resource request acted on. */
export interface ObjectReference {
  resource?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiGroup?: string;
  apiVersion?: string;
  resourceVersion?: string;
  subresource?: string;
}

/** `meta/v1` Status as embedded in `responseStatus`. */
export interface ResponseStatus {
  metadata?: Record<string, unknown>;
  status?: string;
  message?: string;
  reason?: string;
  details?: unknown;
  code?: number;
}

/** One audit event (`audit.k8s.io/v1` Event). Unknown keys are kept as they came. */
export interface Event {
  kind?: string;
  apiVersion?: string;
  level: Level;
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: UserInfo;
  impersonatedUser?: UserInfo;
  authenticationMetadata?: Record<string, unknown>;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus?: ResponseStatus;
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp: string | null;
  stageTimestamp: string | null;
  annotations?: Record<string, string>;
}

/** `audit.k8s.io/v1` EventList, the body kube-apiserver's webhook backend posts. */
export interface EventList {
  kind: "EventList";
  apiVersion: string;
  metadata: Record<string, unknown>;
  items: Event[];
}

/**
 * Rank of a level; unknown strings rank as None, as `Level.Less` does upstream.
 *
 * @example
 * ```ts
 * levelRank("Request") > levelRank("Metadata"); // true
 * ```
 */
export function levelRank(level: string): number {
  const i = LEVELS.indexOf(level as Level);
  return i < 0 ? 0 : i;
}

const LEVEL_SET: ReadonlySet<string> = new Set(LEVELS);
const STAGE_SET: ReadonlySet<string> = new Set(STAGES);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks that a parsed JSON value is an audit event and says why when it is not.
 *
 * Decoding is lenient as in kube-apiserver: unknown keys stay, absent optional keys are fine.
 * What an event cannot lack is what every stage and sink relies on: a known `level` and
 * `stage`, a string `auditID`, and well-typed `user`, `objectRef` and `annotations`.
 *
 * @example
 * ```ts
 * const reason = eventProblem({ level: "Metadata", stage: "Panic", auditID: "x" });
 * // reason === null
 * ```
 */
export function eventProblem(v: unknown): string | null {
  if (!isPlainObject(v)) return `not an object`;
  // Runs for every event: no lists or closures built on the way to "no problem".
  const kind = v.kind;
  if (kind !== undefined && kind !== "Event") return `kind is ${JSON.stringify(kind)}`;
  const apiVersion = v.apiVersion;
  if (
    apiVersion !== undefined && apiVersion !== AUDIT_API_VERSION &&
    apiVersion !== LEGACY_API_VERSION
  ) {
    return `apiVersion ${JSON.stringify(apiVersion)} is not ${AUDIT_API_VERSION}`;
  }
  if (typeof v.auditID !== "string" || v.auditID === "") return "auditID missing";
  const level = v.level;
  if (typeof level !== "string" || !LEVEL_SET.has(level)) {
    return `level ${JSON.stringify(level)} is not one of ${LEVELS.join(", ")}`;
  }
  const stage = v.stage;
  if (typeof stage !== "string" || !STAGE_SET.has(stage)) {
    return `stage ${JSON.stringify(stage)} is not one of ${STAGES.join(", ")}`;
  }
  if (!isOptionalString(v.verb)) return "verb is not a string";
  if (!isOptionalString(v.requestURI)) return "requestURI is not a string";
  if (!isOptionalString(v.userAgent)) return "userAgent is not a string";
  if (!isOptionalObject(v.user)) return "user is not an object";
  if (!isOptionalObject(v.impersonatedUser)) return "impersonatedUser is not an object";
  if (!isOptionalObject(v.objectRef)) return "objectRef is not an object";
  if (!isOptionalObject(v.annotations)) return "annotations is not an object";
  const ips = v.sourceIPs;
  if (ips !== undefined && ips !== null && !Array.isArray(ips)) return "sourceIPs is not a list";
  return null;
}

function isOptionalString(v: unknown): boolean {
  return v === undefined || typeof v === "string";
}

function isOptionalObject(v: unknown): boolean {
  return v === undefined || v === null || isPlainObject(v);
}

/**
 * Fills in what a decoded event may lack so later stages can read it without checks:
 * `verb`, `requestURI` become `""`, `user` becomes `{}` (Go's zero values).
 * Mutates and returns the same object; call only on values {@linkcode eventProblem} passed.
 *
 * @example
 * ```ts
 * const e = asEvent({ level: "None", stage: "Panic", auditID: "a" });
 * // e.user is {}
 * ```
 */
export function asEvent(v: unknown): Event {
  const e = v as Event;
  if (e.verb === undefined) e.verb = "";
  if (e.requestURI === undefined) e.requestURI = "";
  if (e.user === undefined || e.user === null) e.user = {};
  return e;
}
