/**
 * What the NATS source and sink share: connecting (with the client's own reconnects, and
 * status events in the daemon's log) and making sure the JetStream stream exists, created
 * the same way by whichever side gets there first.
 *
 * @module
 */
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { Logger } from "./log.ts";
import { errorText } from "./errors.ts";

/**
 * How long the first connection may take before creation fails, ms.
 *
 * @example
 * ```ts
 * await connectNats({ servers, name, log, timeout: NATS_CONNECT_TIMEOUT });
 * ```
 */
export const NATS_CONNECT_TIMEOUT = 5_000;
/**
 * How long a stream this module creates keeps messages, ms. Without a limit a stream nobody
 * consumes grows until the disk is full; a day is long enough to ride out an outage of the
 * consuming side. Operators who want other limits create the stream themselves.
 *
 * @example
 * ```ts
 * await jsm.streams.add({ name: "AUDIT", subjects: ["audit.events"], max_age: NATS_STREAM_MAX_AGE * 1e6 });
 * ```
 */
export const NATS_STREAM_MAX_AGE = 24 * 60 * 60 * 1000;

/**
 * How a stream auditpipe creates is set up (the config's `streamSettings`), durations in ms.
 * `maxAge` 0 keeps messages for ever; `maxBytes` unset puts no bound on the size.
 *
 * @example
 * ```ts
 * const settings: NatsStreamSettings = { replicas: 3, maxAge: 86_400_000, duplicateWindow: 120_000 };
 * ```
 */
export interface NatsStreamSettings {
  /** Copies of each message, on that many servers of a cluster (1..5). */
  readonly replicas: number;
  /** How long a message is kept, ms; 0: no limit. */
  readonly maxAge: number;
  /** How long JetStream remembers a `Nats-Msg-Id` to drop a message sent again, ms. */
  readonly duplicateWindow: number;
  /** Bytes the stream keeps at most; the oldest messages go first. */
  readonly maxBytes?: number;
}

/**
 * The settings a stream is created with when the config names none: one replica (what a
 * single server can place), {@linkcode NATS_STREAM_MAX_AGE}, JetStream's 2 minute window.
 *
 * @example
 * ```ts
 * await ensureStream(jsm, "AUDIT", "audit.events", log, NATS_STREAM_DEFAULTS);
 * ```
 */
export const NATS_STREAM_DEFAULTS: NatsStreamSettings = {
  replicas: 1,
  maxAge: NATS_STREAM_MAX_AGE,
  duplicateWindow: 2 * 60 * 1000,
};

/**
 * TLS material and credentials of a NATS connection, read from the files the config names.
 * `tls` present means TLS is required (`ca` verifies the server, else the system's roots;
 * `cert` and `key` are the client's, for servers that verify clients). At most one of
 * `token`, `user`/`pass` and `creds` (a `.creds` file: JWT and NKey seed) is set.
 *
 * @example
 * ```ts
 * const security: NatsSecurity = { tls: { ca: await Deno.readTextFile("ca.crt") }, token: "s3cret" };
 * ```
 */
export interface NatsSecurity {
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  readonly token?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly creds?: string;
}

/**
 * Options of {@linkcode connectNats}.
 *
 * @example
 * ```ts
 * const opts: NatsConnectOptions = { servers: ["nats://127.0.0.1:4222"], name: "auditpipe-siem", log };
 * ```
 */
export interface NatsConnectOptions {
  readonly servers: readonly string[];
  /** The client name the server shows (`nats server report connections`). */
  readonly name: string;
  /** Receives disconnect/reconnect/error status lines. */
  readonly log: Logger;
  /** Timeout of the first connection, ms; default {@linkcode NATS_CONNECT_TIMEOUT}. */
  readonly timeout?: number;
  /** TLS and credentials, when the server wants them. */
  readonly security?: NatsSecurity;
}

/**
 * Connects to the first reachable of `servers`, or rejects with an error naming all of them.
 * Once connected, the client reconnects by itself for as long as the connection is open
 * (publishes and acks are buffered meanwhile); status changes are logged.
 *
 * @example
 * ```ts
 * const nc = await connectNats({ servers: cfg.servers, name: `auditpipe-${name}`, log });
 * await nc.drain();
 * ```
 */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...opts.servers],
      name: opts.name,
      timeout: opts.timeout ?? NATS_CONNECT_TIMEOUT,
      // A daemon must outlive a NATS restart of any length.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      // Otherwise every request (each JetStream publish) builds two Errors up front, with
      // their stacks, in case it fails: a quarter of a publisher's CPU. Our logs carry the
      // errors' messages, which stay the same.
      noAsyncTraces: true,
      ...securityOptions(opts.security),
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${opts.servers.join(", ")}: ${errorText(err)}`, {
      cause: err,
    });
  }
  void logStatus(nc, opts.log);
  return nc;
}

function securityOptions(sec: NatsSecurity | undefined) {
  if (!sec) return {};
  return {
    ...(sec.tls ? { tls: { ...sec.tls } } : {}),
    ...(sec.token !== undefined ? { token: sec.token } : {}),
    ...(sec.user !== undefined ? { user: sec.user, pass: sec.pass } : {}),
    ...(sec.creds !== undefined
      ? { authenticator: credsAuthenticator(new TextEncoder().encode(sec.creds)) }
      : {}),
  };
}

/** Connections that lost their server and have not reconnected yet. */
const disconnected = new WeakSet<NatsConnection>();

/** Logs the connection's status events until it closes. */
async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  try {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          disconnected.add(nc);
          log.warn("NATS disconnected; reconnecting", { server: s.server });
          break;
        case "reconnect":
          disconnected.delete(nc);
          log.info("NATS reconnected", { server: s.server });
          break;
        case "error":
          log.error("NATS connection error", { error: errorText(s.error) });
          break;
        case "slowConsumer":
          log.warn("NATS slow consumer", { pending: s.pending });
          break;
        case "ldm":
          log.info("NATS server entering lame duck mode", { server: s.server });
          break;
        default:
          // pings, reconnect attempts and cluster updates are too chatty for the log.
      }
    }
  } catch { /* the status iterator ends with the connection */ }
}

/**
 * How long {@linkcode closeNats} lets a drain take, ms.
 *
 * @example
 * ```ts
 * await closeNats(nc, NATS_DRAIN_TIMEOUT);
 * ```
 */
export const NATS_DRAIN_TIMEOUT = 5_000;

/**
 * Closes a connection from {@linkcode connectNats}: drains it (acks, naks and publishes still
 * buffered go out) when connected, for at most `timeoutMs`, then closes it for good. A
 * connection that is reconnecting could only drain once a server is back, and would keep
 * the process alive trying; it is closed at once.
 *
 * @example
 * ```ts
 * await closeNats(nc); // never rejects
 * ```
 */
export async function closeNats(
  nc: NatsConnection,
  timeoutMs: number = NATS_DRAIN_TIMEOUT,
): Promise<void> {
  if (nc.isClosed()) return;
  if (!disconnected.has(nc) && !nc.isDraining()) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      nc.drain().then(() => true, () => false),
      new Promise<false>((r) => timer = setTimeout(() => r(false), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (drained) return;
  }
  await nc.close().catch(() => {});
}

/**
 * Whether NATS subject `subject` is matched by `pattern` (`*` one token, `>` the rest).
 *
 * @example
 * ```ts
 * subjectMatches("audit.>", "audit.events"); // true
 * subjectMatches("audit.*", "audit.a.b");    // false
 * ```
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * Whether `err` is a JetStream API error with `code` (e.g. stream or consumer not found).
 *
 * @example
 * ```ts
 * if (isApiError(err, JetStreamApiCodes.StreamNotFound)) await create();
 * ```
 */
export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/**
 * Makes sure stream `stream` exists: an existing one is left exactly as it is (only a
 * warning when it does not capture `subject`, or has other replicas or another duplicate
 * window than `configured`, when set); a missing one is created with subjects `[subject]`,
 * file storage and `configured` or {@linkcode NATS_STREAM_DEFAULTS}. Two nodes creating it at the same moment is fine: JetStream accepts an
 * identical create.
 *
 * @example
 * ```ts
 * const jsm = await jetstreamManager(nc);
 * await ensureStream(jsm, "AUDIT", "audit.events", log, { ...NATS_STREAM_DEFAULTS, replicas: 3 });
 * ```
 */
export async function ensureStream(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  log: Logger,
  configured?: NatsStreamSettings,
): Promise<StreamInfo> {
  const settings = configured ?? NATS_STREAM_DEFAULTS;
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(stream);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    try {
      info = await jsm.streams.add(natsStreamConfig(stream, subject, settings));
    } catch (addErr) {
      throw new Error(
        `cannot create JetStream stream ${stream} with ${settings.replicas} replica${
          settings.replicas === 1 ? "" : "s"
        }: ${errorText(addErr)}`,
        { cause: addErr },
      );
    }
    log.info("created JetStream stream", { stream, subject, replicas: settings.replicas });
    return info;
  }
  const subjects = info.config.subjects ?? [];
  if (!subjects.some((p) => subjectMatches(p, subject))) {
    log.warn("JetStream stream does not capture the subject; leaving the stream as it is", {
      stream,
      subject,
      streamSubjects: subjects,
    });
  }
  const replicas = info.config.num_replicas ?? 1;
  const window = (info.config.duplicate_window ?? 0) / 1_000_000;
  if (
    configured !== undefined &&
    (replicas !== configured.replicas || window !== configured.duplicateWindow)
  ) {
    // Changing a stream that holds a fleet's events is the operator's call, not a node's.
    log.warn("JetStream stream differs from streamSettings; leaving the stream as it is", {
      stream,
      replicas,
      wantReplicas: settings.replicas,
      duplicateWindowMs: window,
      wantDuplicateWindowMs: settings.duplicateWindow,
    });
  }
  return info;
}

/**
 * The config a stream is created with: file storage, subjects `[subject]`, `settings`.
 *
 * @example
 * ```ts
 * natsStreamConfig("AUDIT", "audit.events", NATS_STREAM_DEFAULTS).num_replicas; // 1
 * ```
 */
export function natsStreamConfig(
  stream: string,
  subject: string,
  settings: NatsStreamSettings,
): Partial<StreamConfig> & { name: string } {
  return {
    name: stream,
    subjects: [subject],
    storage: StorageType.File,
    num_replicas: settings.replicas,
    max_age: settings.maxAge * 1_000_000, // nanoseconds
    duplicate_window: settings.duplicateWindow * 1_000_000,
    ...(settings.maxBytes !== undefined ? { max_bytes: settings.maxBytes } : {}),
  };
}
