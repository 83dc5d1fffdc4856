/**
 * `auditpipe buffer inspect PATH [--dump] [--json]`: what a sink's disk buffer holds, for an
 * operator after an incident. Reads only; safe while a daemon runs on the buffer.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { errorText } from "../pipeline/core/errors.ts";
import {
  type BufferReport,
  inspectBuffer,
  undeliveredRecords,
} from "../pipeline/diskbuffer/inspect.ts";
import { lockHolder } from "../pipeline/diskbuffer/lock.ts";
import { stderrProgress } from "./progress.ts";
import { writeAllSync } from "./write_all.ts";

const HELP = `Usage: auditpipe buffer inspect PATH [--dump] [--json]

Prints a disk buffer's segments (bytes, records, undelivered records), its delivery cursor and
any damaged range (segment, offset, reason), and the pid of the daemon using it, if one is.
Changes nothing and holds no lock, so it also reads a buffer in use (its counts may then move
while it reads); the daemon cuts damage off when it opens the buffer.
  --dump   write the undelivered events to stdout as JSON lines (the summary goes to stderr)
  --json   print the summary as one JSON object
Exit status: 0 intact, 1 damage found, 2 usage or read error.
`;

/**
 * Runs the buffer command; returns the exit code.
 *
 * @example
 * ```ts
 * await bufferCommand(["inspect", "/var/lib/auditpipe/remote", "--dump"]);
 * ```
 */
export async function bufferCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        dump: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: true,
    });
  } catch (err) {
    console.error(`auditpipe buffer: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals[0] !== "inspect" || positionals.length !== 2) {
    console.error(`auditpipe buffer: expected "inspect PATH"\n\n${HELP}`);
    return 2;
  }
  const path = positionals[1];
  let report: BufferReport;
  let holder: Holder;
  try {
    const info = await Deno.stat(path);
    if (!info.isDirectory) throw new Error("not a folder");
    holder = await lockHolder(path);
    report = await inspectBuffer(path);
  } catch (err) {
    console.error(`auditpipe buffer inspect: ${path}: ${errorText(err)}`);
    return 2;
  }
  const summary = values.json
    ? JSON.stringify(jsonSummary(report, holder))
    : textSummary(report, holder);
  if (values.dump) {
    console.error(summary);
    const out = Deno.stdout;
    const nl = new Uint8Array([10]);
    // In records, which the summary counted; not when the events go to the same terminal
    // (the bar would be drawn over them).
    const progress = stderrProgress(report.undelivered, "events", {
      bytes: report.undeliveredBytes,
      unlessStdoutTerminal: true,
    });
    let events = 0;
    try {
      for await (const r of undeliveredRecords(report)) {
        writeAllSync(out, r.bytes);
        writeAllSync(out, nl);
        progress.read(1);
        await progress.draw(++events);
      }
    } catch (err) {
      await progress.done();
      console.error(`auditpipe buffer inspect: ${path}: ${errorText(err)}`);
      return 2;
    }
    await progress.done();
  } else {
    console.log(summary);
  }
  return report.damage.length > 0 ? 1 : 0;
}

/** Who holds the buffer's lock: nobody (undefined), or a process, by pid when known. */
type Holder = Awaited<ReturnType<typeof lockHolder>>;

function jsonSummary(r: BufferReport, holder: Holder): Record<string, unknown> {
  return {
    path: r.path,
    inUse: holder === undefined ? null : { pid: holder.pid ?? null },
    cursor: r.cursor ?? null,
    cursorInvalid: r.cursorInvalid,
    bytes: r.bytes,
    records: r.records,
    undelivered: r.undelivered,
    undeliveredBytes: r.undeliveredBytes,
    oldestUndelivered: r.oldestUndeliveredAt === undefined
      ? null
      : new Date(r.oldestUndeliveredAt).toISOString(),
    segments: r.segments.map((s) => ({
      id: s.id,
      bytes: s.size,
      records: s.records,
      undelivered: s.undelivered,
      delivered: s.delivered,
    })),
    damage: r.damage,
  };
}

function textSummary(r: BufferReport, holder: Holder): string {
  const lines = [`buffer ${r.path}`];
  if (holder !== undefined) {
    lines.push(
      `in use by ${
        holder.pid === undefined ? "a process (pid not known)" : `pid ${holder.pid}`
      }: read while it runs, so counts may have moved since`,
    );
  }
  if (r.cursorInvalid !== undefined) {
    lines.push(`cursor: invalid (${r.cursorInvalid}): the daemon will deliver everything again`);
  } else if (r.cursor === undefined) {
    lines.push("cursor: none (nothing delivered yet)");
  } else {
    lines.push(`cursor: segment ${r.cursor.segment} offset ${r.cursor.offset}`);
  }
  lines.push(
    `${"segment".padEnd(24)} ${"bytes".padStart(12)} ${"records".padStart(9)} ` +
      `${"undelivered".padStart(11)}`,
  );
  for (const s of r.segments) {
    const note = s.delivered ? "  delivered (to be deleted)" : s.damage ? "  DAMAGED" : "";
    lines.push(
      `${String(s.id).padStart(20, "0")}.seg ${String(s.size).padStart(12)} ` +
        `${String(s.records).padStart(9)} ${String(s.undelivered).padStart(11)}${note}`,
    );
  }
  for (const d of r.damage) {
    lines.push(
      `damage: segment ${d.segment} offset ${d.offset}: ${d.reason} ` +
        `(${d.bytes} bytes from there unreadable)`,
    );
  }
  lines.push(
    `total: ${r.segments.length} segments, ${r.bytes} bytes, ${r.records} records, ` +
      `${r.undelivered} undelivered (${r.undeliveredBytes} bytes)`,
  );
  if (r.oldestUndeliveredAt !== undefined) {
    lines.push(`oldest undelivered: ${new Date(r.oldestUndeliveredAt).toISOString()}`);
  }
  return lines.join("\n");
}
