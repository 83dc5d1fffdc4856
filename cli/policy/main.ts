/**
 * `auditpipe policy`: try a Policy on recorded audit events.
 *
 * - `policy eval --policy P.yaml [FILE...|-]`: one JSON line per event with the policy's
 *   decision and whether the event is kept.
 * - `policy apply --policy P.yaml [FILE...|-]`: the events the policy keeps, as JSON lines.
 * - `policy report --policy P.yaml FILE... [--json]`: per rule, events matched and bytes kept.
 *
 * Inputs are streamed (see input.ts), so logs of any size are read in constant memory. The
 * command takes its input and output through {@linkcode PolicyCliIO} so tests can run it
 * without a process; run this file, or `main.ts policy`, for the real one.
 *
 * @module
 */
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { type CompiledPolicy, compilePolicy, parsePolicy, PolicyError } from "../../policy/mod.ts";
import { HELP, parsePolicyArgs } from "./args.ts";
import { applyEvents } from "./apply.ts";
import { evalEvents } from "./eval.ts";
import { type NamedInput, readEvents } from "./input.ts";
import { type PolicyCliIO, processIO } from "./io.ts";
import { Progress, PROGRESS_MIN_BYTES } from "./progress.ts";
import { reportEvents } from "./report.ts";
import { reportJson, reportTable } from "./report_format.ts";
import { LineWriter } from "./writer.ts";

export type { ByteSink, InputFile, PolicyCliIO } from "./io.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const STDIN_NAME = "<stdin>";

async function openInputs(
  io: PolicyCliIO,
  paths: readonly string[],
): Promise<NamedInput[] | { failed: string; err: Error }> {
  const inputs: NamedInput[] = [];
  for (const path of paths) {
    try {
      inputs.push(
        path === "-"
          ? { name: STDIN_NAME, file: io.openStdin() }
          : { name: path, file: await io.openFile(path) },
      );
    } catch (err) {
      for (const i of inputs) await i.file.stream.cancel().catch(() => {});
      return { failed: path === "-" ? STDIN_NAME : path, err: err as Error };
    }
  }
  return inputs;
}

/**
 * Runs `policy <command> ...` with the given I/O and returns the exit status. `args` may start
 * with the word `policy` (as from the command line of this file) or with the command.
 *
 * @example
 * ```ts
 * const status = await runPolicyCli(["eval", "--policy", "p.yaml", "audit.log"], processIO());
 * ```
 */
export async function runPolicyCli(args: string[], io: PolicyCliIO): Promise<number> {
  const err = new LineWriter(io.stderr);
  const fail = async (msg: string) => {
    await err.line(`auditpipe policy: ${msg}`);
    await err.flush();
    return 2;
  };
  const a = parsePolicyArgs(args);
  if (a.kind === "help") {
    await io.stdout.write(encoder.encode(HELP));
    return a.status;
  }
  if (a.kind === "usage") return fail(a.withHelp ? `${a.message}\n\n${HELP}` : a.message);

  let compiled: CompiledPolicy;
  try {
    const text = decoder.decode(await io.readFile(a.policy));
    const { policy, warnings } = parsePolicy(text, a.policy);
    for (const w of warnings) await err.line(`warning: ${w}`);
    compiled = compilePolicy(policy);
  } catch (e) {
    if (e instanceof PolicyError) return fail(`invalid policy:\n${e.message}`);
    return fail(`cannot read policy ${a.policy}: ${(e as Error).message}`);
  }

  const inputs = await openInputs(io, a.inputs);
  if (!Array.isArray(inputs)) return fail(`cannot read ${inputs.failed}: ${inputs.err.message}`);
  const sizes = inputs.map((i) => i.file.size);
  const total = sizes.every((s) => s !== null) ? sizes.reduce((x, y) => x + y, 0) : 0;
  const progress = new Progress(
    io.stderrIsTerminal && total >= PROGRESS_MIN_BYTES ? io.stderr : null,
    total,
  );

  let rejected = 0;
  let unreadable = 0;
  const events = readEvents(inputs, {
    // Called while decoding, which cannot wait: written after each batch.
    reject: (where, reason) => {
      rejected++;
      err.push(`${where}: not an event: ${reason}`);
    },
    onReadError: (name, e) => {
      unreadable++;
      err.push(`auditpipe policy: cannot read ${name} to its end: ${e.message}`);
    },
    onRead: (n) => progress.read(n),
  });
  let count = 0;
  let ticks = 0;
  async function* tracked(): AsyncGenerator<Envelope[]> {
    for await (const batch of events) {
      yield batch;
      count += batch.length;
      // Every 64 chunks (~4 MiB), a turn of the event loop: V8 finishes incremental garbage
      // collection in tasks, and a loop that only awaits microtasks makes it grow the heap
      // instead (peak RSS on a 336 MB EventList: 130-170 MiB without, ~131 MiB with).
      if ((++ticks & 63) === 0) await new Promise((r) => setTimeout(r, 0));
      await progress.draw(count);
      await err.flushIfFull();
    }
  }

  const out = new LineWriter(io.stdout);
  try {
    if (a.command === "eval") await evalEvents(compiled, tracked(), out);
    else if (a.command === "apply") await applyEvents(compiled, tracked(), out);
    else {
      const report = await reportEvents(compiled, tracked());
      await progress.done();
      // Problems first, so the report is what stays on the screen.
      await err.flush();
      if (a.json) await out.line(reportJson(compiled, report));
      else for (const line of reportTable(compiled, report)) await out.line(line);
    }
    await out.flush();
  } catch (e) {
    // Whoever reads stdout has seen enough (`| head`): stop reading, quietly.
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
  await progress.done();
  await err.flush();
  return unreadable > 0 ? 2 : rejected > 0 ? 1 : 0;
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
  return runPolicyCli(args, processIO());
}

if (import.meta.main) Deno.exit(await policyCommand(Deno.args));
