/**
 * The daemon's own log: JSON lines on stderr (`ts`, `level`, `msg`, fields). stdout belongs
 * to the events.
 *
 * @module
 */

/** Log levels, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  with(fields: Record<string, unknown>): Logger;
}

/** Where log lines go; tests pass an array-collecting function. */
export type LogWriter = (line: string) => void;

const encoder = new TextEncoder();
const stderrWriter: LogWriter = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

function serializeError(v: unknown): unknown {
  if (v instanceof Error) {
    const out: Record<string, unknown> = { message: v.message };
    if (v.cause !== undefined) out.cause = serializeError(v.cause);
    return out;
  }
  return v;
}

/**
 * Creates a JSON-lines logger.
 *
 * @example
 * ```ts
 * const log = createLogger("info");
 * log.with({ sink: "local" }).warn("write failed", { path: "/var/log/a.log" });
 * // {"ts":"...","level":"warn","msg":"write failed","sink":"local","path":"/var/log/a.log"}
 * ```
 */
export function createLogger(
  level: LogLevel = "info",
  write: LogWriter = stderrWriter,
  base: Record<string, unknown> = {},
): Logger {
  const min = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < min) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, msg };
    for (const [k, v] of Object.entries(base)) rec[k] = v;
    if (fields) { for (const [k, v] of Object.entries(fields)) rec[k] = serializeError(v); }
    write(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (fields) => createLogger(level, write, { ...base, ...fields }),
  };
}

/**
 * A logger that writes nothing, for tests and tools.
 *
 * @example
 * ```ts
 * new Branch(spec, sink, { stats, levels, log: silentLogger, clock });
 * ```
 */
export const silentLogger: Logger = createLogger("error", () => {});

/**
 * Logs a repeated condition at most once per `intervalMs`, with the count since the last
 * line, so that a flood of drops is a line a second and not a line an event.
 *
 * @example
 * ```ts
 * const drops = new RateLimitedLog(log, "events dropped: buffer full", 1000);
 * drops.add(3, { sink: "siem" }); // logs now with count 3, then at most once a second
 * ```
 */
export class RateLimitedLog {
  #pending = 0;
  #total = 0;
  #last = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fields: Record<string, unknown> = {};

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly intervalMs = 1000,
    private readonly level: LogLevel = "warn",
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Counts `n` more occurrences. */
  add(n: number, fields: Record<string, unknown> = {}): void {
    this.#pending += n;
    this.#total += n;
    this.#fields = fields;
    const t = this.now();
    if (t - this.#last >= this.intervalMs) this.flush();
    else if (this.#timer === undefined) {
      const timer = setTimeout(() => this.flush(), this.intervalMs - (t - this.#last));
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Writes the pending count now, if any. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === 0) return;
    this.#last = this.now();
    this.log[this.level](this.msg, { ...this.#fields, count: this.#pending, total: this.#total });
    this.#pending = 0;
  }
}
