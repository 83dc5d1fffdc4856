/**
 * `auditpipe policy`: try a Policy on recorded audit events.
 *
 * - `policy eval --policy P.yaml [FILE|-]`: one JSON line per event with the policy's decision.
 * - `policy apply --policy P.yaml [FILE|-]`: the events the policy keeps, as JSON lines.
 * - `policy report --policy P.yaml FILE [--json]`: per rule, events matched and bytes kept.
 *
 * Input is JSON lines (an audit.log), or one JSON document (an EventList, an array of events,
 * one event even pretty-printed, or an Azure diagnostic-log envelope). The core takes its
 * input and output through {@linkcode PolicyCliIO} so tests can run it without a process.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Decoded, decodeDocument, DecodeError, decodeLine } from "../pipeline/core/decode.ts";
import { encodeEvent, jsonBytes, jsonSize } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Event } from "../pipeline/core/event.ts";
import {
  applyPolicy,
  type CompiledPolicy,
  compilePolicy,
  describeRule,
  evaluate,
  parsePolicy,
  PolicyError,
} from "../policy/mod.ts";

/**
 * Where the CLI writes bytes.
 *
 * @example
 * ```ts
 * const sink: ByteSink = { write: async (b) => void chunks.push(b) };
 * ```
 */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

/**
 * Everything the command reads from or writes to the outside.
 *
 * @example
 * ```ts
 * const io: PolicyCliIO = {
 *   readFile: (p) => Deno.readFile(p),
 *   readStdin: () => Promise.resolve(new Uint8Array()),
 *   stdout: { write: async (b) => void out.push(b) },
 *   stderr: { write: async (b) => void err.push(b) },
 *   stderrIsTerminal: false,
 * };
 * ```
 */
export interface PolicyCliIO {
  readFile(path: string): Promise<Uint8Array>;
  readStdin(): Promise<Uint8Array>;
  readonly stdout: ByteSink;
  readonly stderr: ByteSink;
  /** Whether a progress bar may be drawn on stderr. */
  readonly stderrIsTerminal: boolean;
}

const HELP = `Usage: auditpipe policy <command> --policy POLICY.yaml [FILE|-]

Try an audit.k8s.io/v1 Policy on recorded audit events.

Commands:
  eval    print the policy's decision for each event, one JSON line per event:
          {"auditID","stage","level","omitStages","omitManagedFields","rule"}
          (rule is the index of the matching rule, null when none matched)
  apply   print the events the policy keeps, lowered to their level, as JSON lines
  report  per rule: events matched, events kept, bytes in and out; rules never
          matched; events matching no rule (a FILE is required)

Options:
  -p, --policy FILE  the Policy (YAML or JSON)
      --json         report: print JSON instead of a table
  -h, --help         show this help

FILE is an audit log (JSON lines), an EventList, a JSON array of events or one event;
"-" or no FILE reads standard input.

Exit status: 0 on success; 1 when some input lines or items were not events (each is
reported on stderr and the rest processed); 2 for bad usage, a bad policy, or input
that cannot be read.
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NL = 10;
const FLUSH_AT = 64 * 1024;
const PROGRESS_MIN_BYTES = 16 * 1024 * 1024;

/** Buffers lines and writes them in large pieces. */
class LineWriter {
  #parts: Uint8Array[] = [];
  #size = 0;
  constructor(readonly sink: ByteSink) {}

  async line(text: string | Uint8Array): Promise<void> {
    this.push(text);
    if (this.#size >= FLUSH_AT) await this.flush();
  }

  /** Adds a line without writing, for callers that cannot wait; see {@linkcode flushIfFull}. */
  push(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    this.#parts.push(bytes, NEWLINE);
    this.#size += bytes.length + 1;
  }

  async flushIfFull(): Promise<void> {
    if (this.#size >= FLUSH_AT) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#size = 0;
    await this.sink.write(out);
  }
}
const NEWLINE = new Uint8Array([NL]);

/** One decoded event and where its bytes end in the input, for progress. */
interface InputEvent {
  readonly envelope: Envelope;
  readonly end: number;
}

/** Events inside an Azure Monitor diagnostic-log envelope (`records[].properties.log`). */
function azureEvents(doc: unknown): unknown[] | null {
  if (typeof doc !== "object" || doc === null) return null;
  const o = doc as Record<string, unknown>;
  const records = Array.isArray(o.records) ? o.records : [o];
  const out: unknown[] = [];
  for (const r of records) {
    const log = (r as { properties?: { log?: unknown } } | null)?.properties?.log;
    if (typeof log !== "string") return null;
    try {
      out.push(JSON.parse(log));
    } catch {
      return null;
    }
  }
  return out.length ? out : null;
}

function firstLineParses(text: string): boolean {
  for (const line of text.split("\n", 64)) {
    if (line.trim() === "") continue;
    try {
      JSON.parse(line);
      return true;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Reads events from input bytes: JSON lines when the first non-blank line is JSON by itself,
 * else one JSON document. Calls `reject` for every line or item that is not an event.
 */
function* readEvents(
  bytes: Uint8Array,
  name: string,
  reject: (where: string, reason: string) => void,
): Generator<InputEvent> {
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const text = decoder.decode(bytes.subarray(start));
  const report = (where: string, d: Decoded) => {
    for (const r of d.rejected) reject(where, `item ${r.index}: ${r.reason}`);
  };
  if (!firstLineParses(text)) {
    let doc: unknown;
    let parsed = true;
    try {
      doc = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (parsed) {
      try {
        const d = decodeDocument(azureEvents(doc) ?? doc);
        report(name, d);
        for (const envelope of d.envelopes) yield { envelope, end: bytes.length };
      } catch (err) {
        reject(name, (err as Error).message);
      }
      return;
    }
  }
  for (let line = 1; start < bytes.length; line++) {
    let end = bytes.indexOf(NL, start);
    if (end < 0) end = bytes.length;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 13) stop--;
    const slice = bytes.subarray(start, stop);
    start = end + 1;
    if (isBlank(slice)) continue;
    let d: Decoded;
    try {
      d = decodeLine(slice);
    } catch (err) {
      const azure = err instanceof DecodeError ? azureLine(slice) : null;
      if (azure === null) {
        reject(`${name}:${line}`, (err as Error).message);
        continue;
      }
      d = azure;
    }
    report(`${name}:${line}`, d);
    for (const envelope of d.envelopes) yield { envelope, end };
  }
}

function azureLine(slice: Uint8Array): Decoded | null {
  try {
    const events = azureEvents(JSON.parse(decoder.decode(slice)));
    return events ? decodeDocument(events) : null;
  } catch {
    return null;
  }
}

function isBlank(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** Draws `\r[####    ] 40%` on a terminal, at most every 8 Ki events. */
class Progress {
  #next = 0;
  constructor(readonly sink: ByteSink | null, readonly total: number) {}

  async update(done: number, count: number): Promise<void> {
    if (this.sink === null || count < this.#next) return;
    this.#next = count + 8192;
    const frac = Math.min(1, done / this.total);
    const width = 30;
    const filled = Math.round(frac * width);
    const bar = "#".repeat(filled) + " ".repeat(width - filled);
    await this.sink.write(
      encoder.encode(`\r[${bar}] ${Math.floor(frac * 100)}% ${count} events`),
    );
  }

  async done(): Promise<void> {
    if (this.sink) await this.sink.write(encoder.encode("\r\x1b[K"));
  }
}

interface RuleStats {
  events: number;
  kept: number;
  omittedStage: number;
  bytesIn: number;
  bytesOut: number;
}

function newStats(): RuleStats {
  return { events: 0, kept: 0, omittedStage: 0, bytesIn: 0, bytesOut: 0 };
}

function pad(cells: string[][], rightAlign: ReadonlySet<number>): string[] {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((row) =>
    row.map((cell, c) => {
      if (c === row.length - 1) return cell;
      return rightAlign.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]);
    }).join("  ").trimEnd()
  );
}

async function report(
  err: LineWriter,
  policy: CompiledPolicy,
  events: Iterable<InputEvent>,
  progress: Progress,
  out: LineWriter,
  json: boolean,
): Promise<void> {
  const rules = policy.rules.map(newStats);
  const noMatch = newStats();
  const total = newStats();
  for (const { envelope, end } of events) {
    const result = evaluate(policy, envelope.event);
    const applied = applyPolicy(result, envelope.event);
    const s = result.rule === null ? noMatch : rules[result.rule];
    const bytesIn = jsonSize(envelope);
    let bytesOut = 0;
    if (applied === envelope.event) bytesOut = bytesIn;
    else if (typeof applied !== "string") bytesOut = jsonSize({ event: applied });
    for (const t of [s, total]) {
      t.events++;
      t.bytesIn += bytesIn;
      t.bytesOut += bytesOut;
      if (typeof applied !== "string") t.kept++;
      else if (applied === "omitted_stage") t.omittedStage++;
    }
    await progress.update(end, total.events);
    await err.flushIfFull();
  }
  await progress.done();
  const never = rules.flatMap((s, i) => (s.events === 0 ? [i] : []));
  const described = policy.policy.rules.map(describeRule);
  if (json) {
    await out.line(JSON.stringify({
      rules: rules.map((s, i) => ({
        index: i,
        level: policy.policy.rules[i].level,
        description: described[i],
        ...s,
      })),
      noMatch,
      total,
      neverMatched: never,
    }));
    return;
  }
  const head = [
    "RULE",
    "LEVEL",
    "EVENTS",
    "KEPT",
    "STAGE-OMITTED",
    "BYTES-IN",
    "BYTES-OUT",
    "CONDITIONS",
  ];
  const row = (id: string, level: string, s: RuleStats, what: string) => [
    id,
    level,
    String(s.events),
    String(s.kept),
    String(s.omittedStage),
    String(s.bytesIn),
    String(s.bytesOut),
    what,
  ];
  const cells = [
    head,
    ...rules.map((s, i) => row(String(i), policy.policy.rules[i].level, s, described[i])),
    row("-", "None", noMatch, "(no rule matched)"),
    row("total", "", total, ""),
  ];
  for (const line of pad(cells, new Set([2, 3, 4, 5, 6]))) await out.line(line);
  await out.line("");
  await out.line(
    never.length ? `rules never matched: ${never.join(", ")}` : "rules never matched: none",
  );
  await out.line(`events matching no rule: ${noMatch.events}`);
}

/**
 * Runs `policy <command> ...` with the given I/O and returns the exit status. `args` may start
 * with the word `policy` (as from the command line of this file) or with the command.
 *
 * @example
 * ```ts
 * const status = await runPolicyCli(["eval", "--policy", "p.yaml", "audit.log"], io);
 * ```
 */
export async function runPolicyCli(args: string[], io: PolicyCliIO): Promise<number> {
  const err = new LineWriter(io.stderr);
  const fail = async (msg: string, status = 2) => {
    await err.line(`auditpipe policy: ${msg}`);
    await err.flush();
    return status;
  };
  if (args[0] === "policy") args = args.slice(1);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        policy: { type: "string", short: "p" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message}\n\n${HELP}`);
  }
  const { values, positionals } = parsed;
  const [command, ...files] = positionals;
  if (values.help || command === "help" || command === undefined) {
    await io.stdout.write(encoder.encode(HELP));
    return command === undefined && !values.help ? 2 : 0;
  }
  if (!["eval", "apply", "report"].includes(command)) {
    return fail(`unknown command "${command}"\n\n${HELP}`);
  }
  if (values.policy === undefined) return fail(`${command} needs --policy FILE`);
  if (files.length > 1) return fail(`${command} takes at most one input FILE, got ${files.length}`);
  if (values.json && command !== "report") return fail(`--json is only for report`);
  const file = files[0] ?? "-";
  if (command === "report" && file === "-") return fail(`report needs an input FILE`);

  let compiled: CompiledPolicy;
  try {
    const text = decoder.decode(await io.readFile(values.policy));
    const { policy, warnings } = parsePolicy(text, values.policy);
    for (const w of warnings) await err.line(`warning: ${w}`);
    compiled = compilePolicy(policy);
  } catch (e) {
    if (e instanceof PolicyError) return fail(`invalid policy:\n${e.message}`);
    return fail(`cannot read policy ${values.policy}: ${(e as Error).message}`);
  }

  let input: Uint8Array;
  const name = file === "-" ? "<stdin>" : file;
  try {
    input = file === "-" ? await io.readStdin() : await io.readFile(file);
  } catch (e) {
    return fail(`cannot read ${name}: ${(e as Error).message}`);
  }

  let rejected = 0;
  const reject = (where: string, reason: string) => {
    rejected++;
    // Called from inside the event generator, which cannot wait: written by flushIfFull.
    err.push(`${where}: not an event: ${reason}`);
  };
  const events = readEvents(input, name, reject);
  const out = new LineWriter(io.stdout);
  const progress = new Progress(
    io.stderrIsTerminal && input.length >= PROGRESS_MIN_BYTES ? io.stderr : null,
    input.length,
  );
  if (command === "report") {
    await report(err, compiled, events, progress, out, values.json === true);
  } else {
    let count = 0;
    for (const { envelope, end } of events) {
      const event = envelope.event;
      const result = evaluate(compiled, event);
      if (command === "eval") {
        await out.line(JSON.stringify({
          auditID: event.auditID,
          stage: event.stage,
          level: result.level,
          omitStages: result.omitStages,
          omitManagedFields: result.omitManagedFields,
          rule: result.rule,
        }));
      } else {
        const applied = applyPolicy(result, event);
        if (applied === event) await out.line(jsonBytes(envelope));
        else if (typeof applied !== "string") await out.line(encodeEvent(applied as Event));
      }
      await progress.update(end, ++count);
      await err.flushIfFull();
    }
    await progress.done();
  }
  await out.flush();
  await err.flush();
  return rejected > 0 ? 1 : 0;
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}

/**
 * `auditpipe policy ...` on the real process: files, stdin, stdout and stderr. Returns the
 * exit status.
 *
 * @example
 * ```ts
 * Deno.exit(await policyCommand(["report", "--policy", "policy.yaml", "audit.log"]));
 * ```
 */
export function policyCommand(args: string[]): Promise<number> {
  return runPolicyCli(args, {
    readFile: (path) => Deno.readFile(path),
    readStdin: () => new Response(Deno.stdin.readable).bytes(),
    stdout: { write: (b) => writeAll(Deno.stdout, b) },
    stderr: { write: (b) => writeAll(Deno.stderr, b) },
    stderrIsTerminal: Deno.stderr.isTerminal(),
  });
}

if (import.meta.main) Deno.exit(await policyCommand(Deno.args));
