/**
 * `auditpipe verify --public-key FILE LOG...`: proves log files written by a log sink with
 * `integrity` intact, or names the first places they are not. Reads only the files given and
 * their `.chain` sidecars; loads no daemon module.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createPublicKey, type KeyObject } from "node:crypto";
import { loadUnits } from "./sidecars.ts";
import { type Finding, verifyUnits } from "./check.ts";
import { stderrProgress } from "../progress.ts";

const HELP = `Usage: auditpipe verify --public-key FILE LOG...

Checks log files written by a log sink with 'integrity' (and their LOG.chain sidecars, found
beside them; .gz backups too; any order) against the signed checkpoints.
Prints 'OK: N lines in M files, K checkpoints, chain ID, first TIME, last TIME' and exits 0, or
each problem as 'PLACE: KIND: what' and exits 1. Kinds: edited, removed, inserted, reordered,
truncated, unverified (lines no checkpoint covers, such as the newest lines of a running
sink's file), missing-file, forged, broken-chain, unreadable. Restarts, new chains, a chain
that ends without a close record, and backups removed by the sink's retention (rotate.maxBackup,
maxAge: 'pruned by retention', recorded in a signed checkpoint) are shown as notes.
Exit 2: usage or unreadable key.

Example:
  auditpipe verify --public-key auditpipe-signing.pub /var/log/audit/audit*.log*
`;

function show(f: Finding): string {
  return `${f.at}: ${f.kind}: ${f.message}`;
}

/**
 * Runs `auditpipe verify`; returns the exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await verifyCommand(["--public-key", "k.pub", "audit.log"]));
 * ```
 */
export async function verifyCommand(args: string[]): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        "public-key": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    console.error(`auditpipe verify: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values["public-key"] || positionals.length === 0) {
    console.error(`auditpipe verify: --public-key and at least one LOG are required\n\n${HELP}`);
    return 2;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(await Deno.readTextFile(values["public-key"]));
  } catch (e) {
    console.error(
      `auditpipe verify: --public-key ${values["public-key"]}: ${(e as Error).message}`,
    );
    return 2;
  }
  const units = await loadUnits(positionals, key);
  // The bar follows the log files' bytes as stored (sidecars are small beside them).
  let total = 0;
  for (const u of units) {
    if (u.log !== null) total += await Deno.stat(u.log).then((s) => s.size, () => 0);
  }
  const progress = stderrProgress(total, "lines");
  const r = await verifyUnits(units, key, async (bytes, lines) => {
    progress.read(bytes);
    await progress.draw(lines);
  });
  await progress.done();
  for (const n of r.notes) console.log(show(n));
  if (r.problems.length > 0) {
    for (const p of r.problems) console.log(show(p));
    console.log(`FAILED: ${r.problems.length} problem(s) in ${r.files} file(s)`);
    return 1;
  }
  console.log(
    `OK: ${r.lines} lines in ${r.files} files, ${r.checkpoints} checkpoints, chain ${
      r.chains.join(", ")
    }, first ${r.first}, last ${r.last}`,
  );
  return 0;
}
