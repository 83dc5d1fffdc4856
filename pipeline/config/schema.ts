/**
 * The pipeline config schema: every key, its type, its default and its error message.
 * Per-sink defaults for `mode`, `batch` and `truncate` are kube-apiserver's for the backend
 * the sink stands for (`--audit-log-*` for log and stdout, `--audit-webhook-*` for webhook).
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../core/duration.ts";

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

const got = (what: string) => (iss: { input?: unknown }) => `${what}, got ${show(iss.input)}`;

/** A positive integer. */
const posInt = () =>
  z.number({ error: got("must be a positive integer") }).int({
    error: got("must be a positive integer"),
  })
    .positive({ error: got("must be a positive integer") });
/** An integer of zero or more. */
const count = () =>
  z.number({ error: got("must be a whole number >= 0") }).int({
    error: got("must be a whole number >= 0"),
  })
    .nonnegative({ error: got("must be a whole number >= 0") });
const posNumber = () =>
  z.number({ error: got("must be a number > 0") }).positive({ error: got("must be a number > 0") });
const str = () => z.string({ error: got("must be a string") });
const bool = () => z.boolean({ error: got("must be true or false") });
const oneOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.enum(values, { error: got(`must be one of ${values.join(", ")}`) });

/** A Go duration string (or 0), as milliseconds. */
const duration = () =>
  z.union([z.string(), z.literal(0)], { error: got("must be a duration like 500ms, 30s or 1m30s") })
    .transform((v, ctx) => {
      const ms = typeof v === "number" ? 0 : parseDuration(v);
      if (ms === null || ms < 0) {
        ctx.addIssue({
          code: "custom",
          message: `must be a duration like 500ms, 30s or 1m30s, got ${show(v)}`,
        });
        return z.NEVER;
      }
      return ms;
    });

/** `host:port`, `[v6]:port` or `:port`. */
const listen = () =>
  str().refine((v) => /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]*):\d{1,5}$/.test(v), {
    error: (iss) => `must be host:port, got ${show(iss.input)}`,
  });

const annotations = () =>
  z.record(z.string(), str(), { error: got("must be a mapping of annotation keys to strings") });

/** A Policy: a path to a YAML/JSON file, or the Policy inline. Checked by `policy/`. */
const policyRef = () =>
  z.union([z.string(), z.record(z.string(), z.unknown())], {
    error: got("must be a path to a Policy file or an inline Policy"),
  });

const throttleSchema = (d: { enabled: boolean; qps: number; burst: number }) =>
  z.strictObject({
    enabled: bool().default(d.enabled),
    qps: posNumber().default(d.qps),
    burst: posInt().default(d.burst),
  }).default(d);

const batchSchema = (
  d: {
    bufferSize: number;
    maxSize: number;
    maxWait: number;
    throttle: { enabled: boolean; qps: number; burst: number };
  },
) =>
  z.strictObject({
    bufferSize: posInt().default(d.bufferSize),
    maxSize: posInt().default(d.maxSize),
    maxWait: duration().default(d.maxWait),
    throttle: throttleSchema(d.throttle),
  }).default({ ...d, throttle: d.throttle });

const truncateSchema = () =>
  z.strictObject({
    enabled: bool().default(false),
    maxEventSize: posInt().default(102400),
    maxBatchSize: posInt().default(10485760),
  }).default({ enabled: false, maxEventSize: 102400, maxBatchSize: 10485760 })
    .refine((t) => t.maxBatchSize >= t.maxEventSize, {
      error: "maxBatchSize must be >= maxEventSize",
      path: ["maxBatchSize"],
    });

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

/**
 * A size in bytes: a number, or a string such as `512MiB`, `1GiB`, `200MB` or `4096`.
 *
 * @example
 * ```ts
 * parseSize("512MiB"); // 536870912
 * parseSize("1.5x");   // null
 * ```
 */
export function parseSize(v: string | number): number | null {
  if (typeof v === "number") return Number.isSafeInteger(v) && v > 0 ? v : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(v);
  if (!m || !(m[2] in SIZE_UNITS)) return null;
  const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2]]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

const size = () =>
  z.union([z.string(), z.number()], { error: got("must be a size like 512MiB, 1GiB or 1048576") })
    .transform((v, ctx) => {
      const n = parseSize(v);
      if (n === null) {
        ctx.addIssue({
          code: "custom",
          message: `must be a size like 512MiB, 1GiB or 1048576, got ${show(v)}`,
        });
        return z.NEVER;
      }
      return n;
    });

const DISK_MAX_BYTES = 1024 ** 3;

/**
 * Where a sink's events wait: `memory` (the `batch` mode's `bufferSize`, as kube-apiserver) or
 * `disk` (an fsynced log in its own folder, acknowledged once on disk).
 */
const bufferSchema = z.strictObject({
  type: oneOf(["memory", "disk"] as const).default("memory"),
  path: str().min(1, "must not be empty").optional(),
  maxBytes: size().default(DISK_MAX_BYTES),
  whenFull: oneOf(["block", "dropNewest"] as const).default("block"),
  fsync: oneOf(["always", "never"] as const).default("always"),
}).refine((b) => b.type !== "disk" || b.path !== undefined, {
  error: "a disk buffer needs a path (its own folder)",
  path: ["path"],
}).default({ type: "memory", maxBytes: DISK_MAX_BYTES, whenFull: "block", fsync: "always" });

const MODES = ["blocking", "batch", "blocking-strict"] as const;
const FORMATS = ["json", "legacy"] as const;

const LOG_BATCH = {
  bufferSize: 10000,
  maxSize: 1,
  maxWait: 0,
  // kube-apiserver's log throttle is off; qps/burst used only if a user turns it on.
  throttle: { enabled: false, qps: 10, burst: 15 },
};
const WEBHOOK_BATCH = {
  bufferSize: 10000,
  maxSize: 400,
  maxWait: 30_000,
  throttle: { enabled: true, qps: 10, burst: 15 },
};

const sinkCommon = (mode: (typeof MODES)[number], batch: typeof LOG_BATCH) => ({
  name: str().optional(),
  policy: policyRef().optional(),
  mode: oneOf(MODES).default(mode),
  batch: batchSchema(batch),
  truncate: truncateSchema(),
  buffer: bufferSchema,
  annotations: annotations().optional(),
});

const stdoutSink = z.strictObject({
  type: z.literal("stdout"),
  format: oneOf(FORMATS).default("json"),
  ...sinkCommon("blocking", LOG_BATCH),
});

const rotateSchema = z.strictObject({
  maxSize: count().default(100),
  maxBackup: count().default(100),
  maxAge: count().default(366),
  compress: bool().default(false),
}).default({ maxSize: 100, maxBackup: 100, maxAge: 366, compress: false });

const CHECKPOINT_EVERY = { events: 1000, interval: 10_000 };

/** Tamper evidence for a log sink: a signed hash chain in `<path>.chain`. */
const integritySchema = z.strictObject({
  signingKey: str().min(1, "must not be empty"),
  checkpointEvery: z.strictObject({
    events: posInt().default(CHECKPOINT_EVERY.events),
    interval: duration().default(CHECKPOINT_EVERY.interval),
  }).default(CHECKPOINT_EVERY),
});

const logSink = z.strictObject({
  type: z.literal("log"),
  integrity: integritySchema.optional(),
  path: str().min(1, "must not be empty"),
  format: oneOf(FORMATS).default("json"),
  rotate: rotateSchema,
  fsync: oneOf(["never", "batch", "always"] as const).default("batch"),
  ...sinkCommon("blocking", LOG_BATCH),
});

const webhookSink = z.strictObject({
  type: z.literal("webhook"),
  kubeconfig: str().min(1, "must not be empty"),
  initialBackoff: duration().default(10_000),
  timeout: duration().default(30_000),
  compress: oneOf(["none", "gzip"] as const).default("none"),
  retry: z.strictObject({
    maxAttempts: count().default(5),
    maxBackoff: duration().optional(),
  }).default({ maxAttempts: 5 }),
  maxInFlight: posInt().default(1),
  ...sinkCommon("batch", WEBHOOK_BATCH),
});

/** TLS and credentials of a NATS source or sink; the files are read when the config loads. */
const natsConnection = {
  tls: z.strictObject({
    caFile: str().optional(),
    certFile: str().optional(),
    keyFile: str().optional(),
  }).refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    error: "set certFile and keyFile together",
  }).optional(),
  auth: z.strictObject({
    token: str().optional(),
    tokenFile: str().optional(),
    user: str().optional(),
    password: str().optional(),
    passwordFile: str().optional(),
    credsFile: str().optional(),
  }).refine((a) => {
    const kinds = [
      a.token !== undefined || a.tokenFile !== undefined,
      a.user !== undefined,
      a.credsFile !== undefined,
    ].filter(Boolean).length;
    const both = (x: unknown, y: unknown) => x !== undefined && y !== undefined;
    return kinds === 1 && !both(a.token, a.tokenFile) && !both(a.password, a.passwordFile) &&
      (a.user !== undefined) === (a.password !== undefined || a.passwordFile !== undefined);
  }, {
    error: "set exactly one of token, tokenFile, user with password or passwordFile, credsFile",
  }).optional(),
};

/** The defaults of {@linkcode natsStreamSettings}: 24 hours kept, JetStream's 2 minute window. */
const NATS_STREAM = { replicas: 1, maxAge: 24 * 60 * 60 * 1000, duplicateWindow: 2 * 60 * 1000 };

/**
 * How a stream auditpipe creates is set up; an existing stream is used as it is (with a
 * warning when these are set and it differs). Unset: one replica, as before, since a single
 * NATS server cannot place more (creating the stream would fail); a cluster sets 3 so that
 * losing a server loses nothing.
 */
const natsStreamSettings = z.strictObject({
  replicas: z.number({ error: got("must be a whole number from 1 to 5") }).int({
    error: got("must be a whole number from 1 to 5"),
  }).min(1, { error: got("must be a whole number from 1 to 5") }).max(5, {
    error: got("must be a whole number from 1 to 5"),
  }).default(NATS_STREAM.replicas),
  maxAge: duration().default(NATS_STREAM.maxAge),
  maxBytes: size().optional(),
  duplicateWindow: duration().refine((ms) => ms > 0, {
    error: "must be a duration above 0",
  }).default(NATS_STREAM.duplicateWindow),
}).refine((s) => s.maxAge === 0 || s.duplicateWindow <= s.maxAge, {
  error: "must not be longer than maxAge (JetStream refuses the stream)",
  path: ["duplicateWindow"],
}).optional();

const natsSink = z.strictObject({
  type: z.literal("nats"),
  servers: z.array(str()).min(1, "must list at least one server").default([
    "nats://127.0.0.1:4222",
  ]),
  subject: str().default("audit.events"),
  stream: str().optional(),
  streamSettings: natsStreamSettings,
  ...natsConnection,
  ...sinkCommon("blocking", { ...LOG_BATCH, maxSize: 100, maxWait: 1000 }),
});

const sinkTypes = ["stdout", "log", "webhook", "nats"] as const;
/**
 * One sink, with kube-apiserver's defaults for the backend it stands for.
 *
 * @example
 * ```ts
 * sinkSchema.parse({ type: "webhook", kubeconfig: "k.yaml" }).batch.maxSize; // 400
 * ```
 */
export const sinkSchema = z.discriminatedUnion(
  "type",
  [stdoutSink, logSink, webhookSink, natsSink],
  {
    error: (iss) =>
      `type must be one of ${sinkTypes.join(", ")}, got ${
        show((iss.input as { type?: unknown })?.type)
      }`,
  },
);

const sourceCommon = {
  name: str().optional(),
  annotations: annotations().optional(),
};

const webhookSource = z.strictObject({
  type: z.literal("webhook"),
  listen: listen().default("127.0.0.1:8080"),
  path: str().refine((p) => p.startsWith("/"), "must start with /").default("/audit"),
  maxBodyBytes: posInt().default(12 * 1024 * 1024),
  // A blocking-mode kube-apiserver has one request open per API request it is serving (up to
  // --max-requests-inflight + --max-mutating-requests-inflight, 600 by default), and a 429
  // makes it wait --audit-webhook-initial-backoff (10 s) while that API request hangs.
  maxInFlight: posInt().default(1024),
  tls: z.strictObject({
    certFile: str(),
    keyFile: str(),
    clientCAFile: str().optional(),
  }).optional(),
  auth: z.strictObject({
    bearerTokenFile: str().optional(),
    bearerToken: str().optional(),
  }).refine((a) => (a.bearerTokenFile === undefined) !== (a.bearerToken === undefined), {
    error: "set exactly one of bearerTokenFile, bearerToken",
  }).optional(),
  deadLetterFile: str().optional(),
  ...sourceCommon,
});

const tailSource = z.strictObject({
  type: z.literal("tail"),
  path: str().min(1, "must not be empty"),
  startAt: oneOf(["end", "beginning"] as const).default("end"),
  checkpointFile: str().optional(),
  maxLineBytes: posInt().default(1024 * 1024),
  pollInterval: duration().default(250),
  ...sourceCommon,
});

const stdinSource = z.strictObject({
  type: z.literal("stdin"),
  maxLineBytes: posInt().default(1024 * 1024),
  ...sourceCommon,
});

const natsSource = z.strictObject({
  type: z.literal("nats"),
  servers: z.array(str()).min(1, "must list at least one server").default([
    "nats://127.0.0.1:4222",
  ]),
  stream: str().default("AUDIT"),
  subject: str().default("audit.events"),
  consumer: str().default("auditpipe"),
  streamSettings: natsStreamSettings,
  // What the durable consumer is created with; an existing consumer is used as it is.
  ackWait: duration().refine((ms) => ms >= 1000, {
    error: (iss) => `must be a duration of at least 1s, got ${iss.input}ms`,
  }).default(30_000),
  maxAckPending: posInt().default(10_000),
  ...natsConnection,
  ...sourceCommon,
});

const sourceTypes = ["webhook", "tail", "stdin", "nats"] as const;
/**
 * One source.
 *
 * @example
 * ```ts
 * sourceSchema.parse({ type: "webhook" }).listen; // "127.0.0.1:8080"
 * ```
 */
export const sourceSchema = z.discriminatedUnion("type", [
  webhookSource,
  tailSource,
  stdinSource,
  natsSource,
], {
  error: (iss) =>
    `type must be one of ${sourceTypes.join(", ")}, got ${
      show((iss.input as { type?: unknown })?.type)
    }`,
});

/**
 * The whole pipeline config. Use `loadConfigText`/`loadConfigFile` (they add positions,
 * environment expansion and path resolution); this is the schema they validate with.
 *
 * @example
 * ```ts
 * const config = configSchema.parse({ sources: [{ type: "stdin" }], sinks: [{ type: "stdout" }] });
 * config.sinks[0].mode; // "blocking"
 * ```
 */
export const configSchema = z.strictObject({
  policy: policyRef().optional(),
  sources: z.array(sourceSchema, { error: got("must be a list of sources") }).min(
    1,
    "must list at least one source",
  ),
  sinks: z.array(sinkSchema, { error: got("must be a list of sinks") }).min(
    1,
    "must list at least one sink",
  ),
  server: z.strictObject({
    listen: listen().optional(),
    unhealthyAfter: duration().default(60_000),
  }).default({ unhealthyAfter: 60_000 }),
  shutdownTimeout: duration().default(30_000),
  /** A folder of AuditSink objects, each run as a webhook sink while it is there. */
  dynamic: z.strictObject({
    dir: str().min(1, "must not be empty"),
  }).optional(),
  logLevel: oneOf(["debug", "info", "warn", "error"] as const).default("info"),
});

/** A validated config with defaults filled in; durations are milliseconds. */
export type Config = z.infer<typeof configSchema>;
/** One validated source. */
export type SourceConfig = Config["sources"][number];
/** One validated sink. */
export type SinkConfig = Config["sinks"][number];
/** The batcher settings of a sink. */
export type BatchConfig = SinkConfig["batch"];
/** The truncate settings of a sink. */
export type TruncateConfig = SinkConfig["truncate"];
/** The rotation settings of a log sink. */
export type RotateConfig = Extract<SinkConfig, { type: "log" }>["rotate"];
/** Where a sink's events wait: memory or a disk buffer. */
export type BufferConfig = SinkConfig["buffer"];
/** A sink mode. */
export type Mode = (typeof MODES)[number];
/** An output format of the log and stdout sinks. */
export type Format = (typeof FORMATS)[number];
