/**
 * `auditpipe policy`: try a Policy on recorded audit events.
 *
 * - `policy eval --policy P.yaml [FILE...|-]`: one JSON line per event with the policy's
 *   decision and whether the event is kept.
 * - `policy apply --policy P.yaml [FILE...|-]`: the events the policy keeps, as JSON lines.
 * - `policy report --policy P.yaml FILE... [--json] [--html OUT.html] [--compare P2.yaml]`:
 *   per rule, events matched and bytes kept; per user, resource and verb; what P2 would keep.
 *
 * Inputs are streamed (see input.ts), so logs of any size are read in constant memory. The
 * command takes its input and output through {@linkcode PolicyCliIO} so tests can run it
 * without a process; run this file, or `main.ts policy`, for the real one.
 *
 * @module
 */
import { type CompiledPolicy, compilePolicy, parsePolicy, PolicyError } from "../../policy/mod.ts";
import { HELP, parsePolicyArgs, type PolicyArgs } from "./args.ts";
import { applyEvents } from "./apply.ts";
import { evalEvents } from "./eval.ts";
import { createDiskFile, type OutputFile, type PolicyCliIO, processIO } from "./io.ts";
import { reportEvents } from "./report.ts";
import { reportDocument } from "./report_document.ts";
import { reportJson, reportTable } from "./report_format.ts";
import { reportHtml } from "./report_html.ts";
import { openEventSource } from "./sources.ts";
import { LineWriter } from "./writer.ts";

export type { ByteSink, InputFile, OutputFile, PolicyCliIO } from "./io.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function usageError(err: LineWriter, msg: string): Promise<2> {
  await err.line(`auditpipe policy: ${msg}`);
  await err.flush();
  return 2;
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
  const fail = (msg: string) => usageError(err, msg);
  const a = parsePolicyArgs(args);
  if (a.kind === "help") {
    await io.stdout.write(encoder.encode(HELP));
    return a.status;
  }
  if (a.kind === "usage") return fail(a.withHelp ? `${a.message}\n\n${HELP}` : a.message);

  const load = async (path: string): Promise<CompiledPolicy | { error: string }> => {
    try {
      const text = decoder.decode(await io.readFile(path));
      const { policy, warnings } = parsePolicy(text, path);
      for (const w of warnings) await err.line(`warning: ${w}`);
      return compilePolicy(policy);
    } catch (e) {
      if (e instanceof PolicyError) return { error: `invalid policy:\n${e.message}` };
      return { error: `cannot read policy ${path}: ${(e as Error).message}` };
    }
  };
  const compiled = await load(a.policy);
  if ("error" in compiled) return fail(compiled.error);
  const compare = a.compare === null ? undefined : await load(a.compare);
  if (compare !== undefined && "error" in compare) return fail(compare.error);

  // Opened before reading, which may take minutes, so that a bad path fails at once.
  let page: OutputFile | null = null;
  if (a.html !== null) {
    try {
      page = await (io.createFile ?? createDiskFile)(a.html);
    } catch (e) {
      return fail(`cannot write ${a.html}: ${(e as Error).message}`);
    }
  }
  try {
    return await run(a, compiled, compare, page, io, err);
  } finally {
    page?.close();
  }
}

/** Reads the inputs and runs the command on them, once the policies and output are open. */
async function run(
  a: Extract<PolicyArgs, { kind: "run" }>,
  compiled: CompiledPolicy,
  compare: CompiledPolicy | undefined,
  page: OutputFile | null,
  io: PolicyCliIO,
  err: LineWriter,
): Promise<number> {
  const source = await openEventSource(io, a.inputs, err, "policy");
  if ("error" in source) return usageError(err, source.error);
  const progress = source.progress;

  const out = new LineWriter(io.stdout);
  try {
    if (a.command === "eval") await evalEvents(compiled, source.batches(), out);
    else if (a.command === "apply") await applyEvents(compiled, source.batches(), out);
    else {
      const report = await reportEvents(compiled, source.batches(), compare);
      await progress.done();
      // Problems first, so the report is what stays on the screen.
      await err.flush();
      const doc = reportDocument(compiled, report, {
        top: a.top,
        compare: compare && a.compare !== null ? { path: a.compare, policy: compare } : undefined,
      });
      if (page !== null) {
        const html = reportHtml(doc, { policy: a.policy, inputs: a.inputs });
        try {
          await page.write(encoder.encode(html));
        } catch (e) {
          return usageError(err, `cannot write ${a.html}: ${(e as Error).message}`);
        }
      }
      if (a.json) await out.line(reportJson(doc));
      else for (const line of reportTable(doc)) await out.line(line);
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
