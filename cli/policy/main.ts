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
import { type CompiledPolicy, compilePolicy, parsePolicy, PolicyError } from "../../policy/mod.ts";
import { HELP, parsePolicyArgs } from "./args.ts";
import { applyEvents } from "./apply.ts";
import { evalEvents } from "./eval.ts";
import { type PolicyCliIO, processIO } from "./io.ts";
import { reportEvents } from "./report.ts";
import { reportJson, reportTable } from "./report_format.ts";
import { openEventSource } from "./sources.ts";
import { LineWriter } from "./writer.ts";

export type { ByteSink, InputFile, PolicyCliIO } from "./io.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
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

  const source = await openEventSource(io, a.inputs, err, "policy");
  if ("error" in source) return fail(source.error);
  const progress = source.progress;

  const out = new LineWriter(io.stdout);
  try {
    if (a.command === "eval") await evalEvents(compiled, source.batches(), out);
    else if (a.command === "apply") await applyEvents(compiled, source.batches(), out);
    else {
      const report = await reportEvents(compiled, source.batches());
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
  return source.status();
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
