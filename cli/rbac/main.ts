/**
 * `auditpipe rbac`: the Roles, ClusterRoles and bindings that allow exactly what a user or
 * service account did in audit logs (audit2rbac's decisions, see generate.ts), or with
 * `--unused`, which granted rules those requests used. Inputs are streamed through the
 * policy tools' reader (cli/policy/sources.ts); only distinct requests are held.
 *
 * The command takes its input and output through {@linkcode PolicyCliIO} so tests can run
 * it without a process; `main.ts rbac` runs the real one.
 *
 * @module
 */
import { type PolicyCliIO, processIO } from "../policy/io.ts";
import { openEventSource } from "../policy/sources.ts";
import { LineWriter } from "../policy/writer.ts";
import { HELP, parseRbacArgs } from "./args.ts";
import { eventToAttributes, RequestSet } from "./attributes.ts";
import { ExistingError, mergeObjects, parseExisting } from "./existing.ts";
import { discoveryObjects, generateRbac } from "./generate.ts";
import { emptyObjects, type RbacObjects } from "./objects.ts";
import { formatObjects } from "./output.ts";
import { eventCounts } from "./select.ts";
import { formatUsageReport, usageReport } from "./unused.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/**
 * Runs `rbac ...` (the arguments after the word `rbac`) with the given I/O; returns the exit
 * status.
 *
 * @example
 * ```ts
 * const status = await runRbacCli(["--user", "alice", "-f", "audit.log"], processIO());
 * ```
 */
export async function runRbacCli(args: string[], io: PolicyCliIO): Promise<number> {
  const err = new LineWriter(io.stderr);
  const say = async (msg: string) => {
    await err.line(msg);
    await err.flush();
  };
  const fail = async (msg: string, status = 2) => {
    await say(`auditpipe rbac: ${msg}`);
    return status;
  };
  const a = parseRbacArgs(args);
  if (a.kind === "help") {
    await io.stdout.write(encoder.encode(HELP));
    return 0;
  }
  if (a.kind === "usage") return fail(`${a.message} (auditpipe rbac --help)`);

  let existing: RbacObjects = emptyObjects();
  for (const path of a.existing) {
    let text: string;
    try {
      text = decoder.decode(await io.readFile(path));
    } catch (e) {
      return fail(`cannot read --existing ${path}: ${(e as Error).message}`);
    }
    try {
      existing = mergeObjects(
        existing,
        parseExisting(text, path, (w) => err.push(`warning: ${w}`)),
      );
    } catch (e) {
      if (e instanceof ExistingError) return fail(`--existing ${e.message}`);
      throw e;
    }
  }

  await say(a.inputs.length === 1 ? "Opening audit source..." : "Opening audit sources...");
  const source = await openEventSource(io, a.inputs, err, "rbac");
  if ("error" in source) return fail(source.error);

  await say("Loading events...");
  const set = new RequestSet();
  for await (const batch of source.batches()) {
    for (const env of batch) {
      if (eventCounts(env.event, a.user, a.namespace)) {
        set.add(eventToAttributes(env.event), env.event.stage);
      }
    }
  }
  await source.progress.done();
  await err.flush();
  const requests = set.requests();
  await say(
    `Read ${source.events} events: ${set.events} of ${a.user}, ${requests.length} distinct requests`,
  );

  const status = source.status();
  if (set.events === 0) {
    const where = a.namespace === "" ? "" : ` in namespace ${a.namespace}`;
    await fail(`no audit events matched user ${a.user}${where}`, 1);
    return Math.max(status, 1);
  }

  let text: string;
  if (a.unused) {
    await say("Counting the use of granted rules...");
    const report = usageReport(a.user, requests, existing);
    for (const d of report.dangling) await say(`warning: ${d}`);
    text = formatUsageReport(report, a.format);
  } else {
    await say("Evaluating API calls...");
    const generated = generateRbac(
      requests.map((r) => r.attrs),
      mergeObjects(discoveryObjects(), existing),
      a,
    );
    await say("Generating roles...");
    text = formatObjects(generated, a.format);
    if (text === "") await say("Nothing to grant: every request is already allowed.");
  }
  try {
    await io.stdout.write(encoder.encode(text));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
  await say("Complete!");
  if (source.rejected > 0) {
    await say(`auditpipe rbac: ${source.rejected} input items were not events`);
  }
  return status;
}

/**
 * `auditpipe rbac ...` on the real process. Returns the exit status.
 *
 * @example
 * ```ts
 * Deno.exit(await rbacCommand(["--serviceaccount", "ns1:sa1", "-f", "audit.log"]));
 * ```
 */
export function rbacCommand(args: string[]): Promise<number> {
  return runRbacCli(args, processIO());
}

if (import.meta.main) Deno.exit(await rbacCommand(Deno.args));
