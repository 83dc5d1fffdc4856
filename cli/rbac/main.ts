/**
 * `auditpipe rbac`: the Roles, ClusterRoles and bindings that allow exactly what a user or
 * service account did in audit logs (audit2rbac's decisions, see generate.ts), or with
 * `--unused`, which granted rules those requests used. Inputs are streamed through the
 * policy tools' reader (cli/policy/input.ts); only distinct requests are held.
 *
 * The command takes its input and output through {@linkcode PolicyCliIO} so tests can run
 * it without a process; `main.ts rbac` runs the real one.
 *
 * @module
 */
import { type NamedInput, readEvents } from "../policy/input.ts";
import { type PolicyCliIO, processIO } from "../policy/io.ts";
import { Progress, PROGRESS_MIN_BYTES } from "../policy/progress.ts";
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
  const inputs = await openInputs(io, a.inputs);
  if (!Array.isArray(inputs)) return fail(`cannot read ${inputs.failed}: ${inputs.err.message}`);
  const sizes = inputs.map((i) => i.file.size);
  const total = sizes.every((s) => s !== null) ? sizes.reduce((x, y) => x + y, 0) : 0;
  const progress = new Progress(
    io.stderrIsTerminal && total >= PROGRESS_MIN_BYTES ? io.stderr : null,
    total,
  );

  await say("Loading events...");
  let rejected = 0;
  let unreadable = 0;
  let read = 0;
  let ticks = 0;
  const set = new RequestSet();
  for await (
    const batch of readEvents(inputs, {
      // Called while decoding, which cannot wait: written after each batch.
      reject: (where, reason) => {
        rejected++;
        err.push(`${where}: not an event: ${reason}`);
      },
      onReadError: (name, e) => {
        unreadable++;
        err.push(`auditpipe rbac: cannot read ${name} to its end: ${e.message}`);
      },
      onRead: (n) => progress.read(n),
    })
  ) {
    for (const env of batch) {
      if (eventCounts(env.event, a.user, a.namespace)) {
        set.add(eventToAttributes(env.event), env.event.stage);
      }
    }
    read += batch.length;
    // A turn of the event loop now and then lets V8 finish incremental GC (see policy/main.ts).
    if ((++ticks & 63) === 0) await new Promise((r) => setTimeout(r, 0));
    await progress.draw(read);
    await err.flushIfFull();
  }
  await progress.done();
  await err.flush();
  const requests = set.requests();
  await say(
    `Read ${read} events: ${set.events} of ${a.user}, ${requests.length} distinct requests`,
  );

  const status = unreadable > 0 ? 2 : rejected > 0 ? 1 : 0;
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
  if (rejected > 0) await say(`auditpipe rbac: ${rejected} input items were not events`);
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
