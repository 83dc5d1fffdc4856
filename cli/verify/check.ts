/**
 * `verify`'s checks: the records of every sidecar against each other (signatures, `prev`,
 * heads across records and files) and every line of every file against its records.
 *
 * A record's interval is checked by reading the file's lines and comparing each line's
 * digest with the record's short digest for that line; where they differ, a look ahead of a
 * few lines on both sides tells an edited line from lines removed, inserted or swapped.
 * Where an interval matches line for line, its head is recomputed from the full digests and
 * compared with the signed one. Memory: one sidecar's records and a few lines of look-ahead.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { SHORT_DIGEST } from "../../backends/integrity/format.ts";
import { type OnRead, Peekable, type ReadLine, readLines } from "./lines.ts";
import type { KeyObject } from "node:crypto";
import { basename } from "node:path";
import { chainOrder, type Located, readUnit, type Unit, unitName } from "./sidecars.ts";

/** Lines looked ahead to resynchronize after a difference. */
const WINDOW = 16;

/**
 * What went wrong, by kind.
 *
 * @example
 * ```ts
 * const k: ProblemKind = "edited";
 * ```
 */
export type ProblemKind =
  | "edited"
  | "removed"
  | "inserted"
  | "reordered"
  | "truncated"
  | "unverified"
  | "missing-file"
  | "forged"
  | "broken-chain"
  | "unreadable";

/**
 * One finding: a problem (`kind`) or, for restarts and new chains, a note.
 *
 * @example
 * ```ts
 * console.log(`${p.at}: ${p.kind}: ${p.message}`);
 * ```
 */
export interface Finding {
  readonly kind: ProblemKind | "restart" | "new-chain" | "open-end" | "pruned";
  /** `file:line`, `file`, or `sidecar:line`. */
  readonly at: string;
  readonly message: string;
}

/**
 * The result of a verification.
 *
 * @example
 * ```ts
 * const r = await verifyUnits(units, publicKey);
 * if (r.problems.length === 0) console.log(`OK: ${r.lines} lines`);
 * ```
 */
export interface VerifyResult {
  readonly problems: Finding[];
  readonly notes: Finding[];
  lines: number;
  files: number;
  checkpoints: number;
  readonly chains: string[];
  first: string | null;
  last: string | null;
}

const short = (d: string) => d.slice(0, SHORT_DIGEST);

/**
 * Verifies units (see `sidecars.ts`), in chain order. `onRead` hears of each chunk of the log
 * files read, with the lines read so far (for a progress bar).
 *
 * @example
 * ```ts
 * const result = await verifyUnits(await loadUnits(paths, publicKey), publicKey);
 * ```
 */
export async function verifyUnits(
  units: readonly Unit[],
  key: KeyObject,
  onRead?: (bytes: number, lines: number) => void | Promise<void>,
): Promise<VerifyResult> {
  const result: VerifyResult = {
    problems: [],
    notes: [],
    lines: 0,
    files: 0,
    checkpoints: 0,
    chains: [],
    first: null,
    last: null,
  };
  const problem = (kind: ProblemKind, at: string, message: string) =>
    result.problems.push({ kind, at, message });
  // Backups retention removed, by the hash of their sidecar's last record (which the next
  // file's first record names): signed records, so an intruder cannot explain a deletion.
  const prunedBy = new Map<string, Located>();
  const given = new Set(
    units.flatMap((u) => u.log === null ? [] : [basename(u.log).replace(/\.gz$/, "")]),
  );
  for (const u of units) {
    for (const loc of u.records) {
      const p = loc.record.pruned;
      if (!p) continue;
      if (p.last !== null) prunedBy.set(p.last, loc);
      if (given.has(p.file)) continue;
      result.notes.push({
        kind: "pruned",
        at: `${loc.sidecar}:${loc.lineNo}`,
        message: `pruned by retention (${p.reason}) at ${loc.record.time}: ${p.file}${
          p.last === null
            ? " (it had no checkpoints signed with this key)"
            : `, ${p.lines} lines, its last checkpoint ${p.seq} with head ${p.head}`
        }`,
      });
    }
  }
  let prevUnit: Unit | null = null;
  let prevRecord: Located | null = null;
  for (const unit of chainOrder(units)) {
    const name = unitName(unit);
    if (unit.sidecar === null) {
      problem("unverified", name, `no sidecar ${name}.chain: no line of it is verified`);
    }
    if (unit.forged.length > 0) {
      problem(
        "forged",
        `${unit.sidecar}:${unit.forged[0]}`,
        `${unit.forged.length} checkpoint(s) whose signature does not verify with the public key (forged, or signed by another key)`,
      );
    }
    if (unit.unreadable.length > 0) {
      problem(
        "unreadable",
        `${unit.sidecar}:${unit.unreadable[0]}`,
        `${unit.unreadable.length} line(s) that are no checkpoint record`,
      );
    }
    const recs = unit.records;
    if (recs.length > 0) {
      const first = recs[0].record;
      const follows = first.prev !== null && prevRecord !== null && first.prev === prevRecord.hash;
      const pruned = first.prev === null ? undefined : prunedBy.get(first.prev);
      if (first.prev !== null && !follows && pruned === undefined) {
        const missing = first.prevFile ? `file ${first.prevFile}` : "a file";
        problem(
          "missing-file",
          name,
          `the chain comes from ${missing}, not among the files given with valid checkpoints (removed or replaced)${
            prevUnit ? `; the files given before it end at ${unitName(prevUnit)}` : ""
          }`,
        );
      }
      checkRecords(unit, follows ? prevRecord : null, result, problem);
      prevRecord = recs.at(-1)!;
    }
    const removedByRetention = unit.records.length > 0 &&
      prunedBy.has(unit.records.at(-1)!.hash);
    if (unit.log === null && removedByRetention) {
      // Cleanup removes the backup first, its sidecar next: a crash between leaves this.
      result.notes.push({
        kind: "pruned",
        at: unit.sidecar!,
        message: `sidecar of ${name}, which retention pruned (the sidecar was left behind)`,
      });
    } else if (unit.log === null) {
      problem("missing-file", name, `missing: only its sidecar ${unit.sidecar} was given`);
    } else {
      result.files++;
      // The line digests, for this file only.
      const full = unit.sidecar === null ? unit : await readUnit(unit.log, unit.sidecar, key, true);
      await checkLines(full, result, problem, onRead && ((n) => onRead(n, result.lines)));
    }
    prevUnit = unit;
  }
  // Whole checkpoints cut off the end together with their lines leave files that agree with
  // each other: say where the chain ends, so an auditor can compare with when it should.
  const last = prevRecord?.record;
  if (last && last.kind !== "close") {
    result.notes.push({
      kind: "open-end",
      at: `${prevRecord!.sidecar}:${prevRecord!.lineNo}`,
      message:
        `the chain ends at checkpoint ${last.seq} (${last.time}) without a close record: the sink is running or crashed, or later files or checkpoints were removed`,
    });
  }
  return result;
}

/** The records among themselves: `prev`, `base`/`head`, notes for restarts and new chains. */
function checkRecords(
  unit: Unit,
  before: Located | null,
  result: VerifyResult,
  problem: (kind: ProblemKind, at: string, message: string) => void,
): void {
  let prev = before;
  for (const loc of unit.records) {
    const r = loc.record;
    const at = `${loc.sidecar}:${loc.lineNo}`;
    result.checkpoints++;
    result.first ??= r.time;
    result.last = r.time;
    if (!result.chains.includes(r.chain)) result.chains.push(r.chain);
    if (r.prev === null) {
      if (result.chains.length > 1 || prev !== null) {
        result.notes.push({
          kind: "new-chain",
          at: `${unitName(unit)}:${r.from + 1}`,
          message:
            `new chain ${r.chain} started at ${r.time} (the sink started without its last checkpoint)`,
        });
      }
    } else if (prev !== null && r.prev !== prev.hash) {
      problem(
        "broken-chain",
        at,
        `checkpoint ${r.seq} does not follow ${prev.sidecar}:${prev.lineNo} (checkpoints removed, inserted or reordered)`,
      );
    } else if (prev !== null && r.base !== prev.record.head) {
      problem(
        "broken-chain",
        at,
        `checkpoint ${r.seq} does not start where the previous one ended`,
      );
    }
    if (r.kind === "open" && r.prev !== null) {
      result.notes.push({
        kind: "restart",
        at: `${unitName(unit)}:${r.lines + 1}`,
        message: `restart at ${r.time}, chain ${r.chain} continues${
          r.recovered > 0
            ? `; lines ${
              r.from + 1
            }-${r.lines} (${r.recovered}), written before a crash, were chained now`
            : ""
        }`,
      });
    }
    if (r.lines === r.from && r.head !== r.base) {
      problem("broken-chain", at, `checkpoint ${r.seq} covers no line but moves the head`);
    }
    prev = loc;
  }
}

/** The file's lines against its records' intervals. */
async function checkLines(
  unit: Unit,
  result: VerifyResult,
  problem: (kind: ProblemKind, at: string, message: string) => void,
  onRead?: OnRead,
): Promise<void> {
  const file = unit.log!;
  // Intervals in file order; an interval never overlaps the one before (a new chain starts
  // after the lines already there).
  const recs = unit.records.filter((l) => l.record.lines > l.record.from)
    .sort((a, b) => a.record.from - b.record.from);
  const total = recs.length > 0 ? recs.at(-1)!.record.lines : 0;
  const recordAt = (i: number): Located | null => {
    let lo = 0, hi = recs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = recs[mid].record;
      if (i < r.from) hi = mid - 1;
      else if (i >= r.lines) lo = mid + 1;
      else return recs[mid];
    }
    return null;
  };
  const expect = (i: number): string | null => {
    const loc = recordAt(i);
    if (!loc) return null;
    const k = (i - loc.record.from) * SHORT_DIGEST;
    return loc.record.digests.slice(k, k + SHORT_DIGEST);
  };
  const where = (i: number) => {
    const loc = recordAt(i);
    return loc ? `checkpoint ${loc.record.seq} (${loc.sidecar}:${loc.lineNo})` : "no checkpoint";
  };
  let obs: Peekable<ReadLine>;
  try {
    obs = new Peekable(readLines(file, onRead));
    await obs.peek(0);
  } catch (e) {
    problem("missing-file", file, `cannot read: ${(e as Error).message}`);
    return;
  }
  let ri = 0;
  let hasher: Hash | null = null;
  let clean = true;
  /** Closes intervals that end at or before `i`. */
  const settle = (i: number) => {
    while (ri < recs.length && i >= recs[ri].record.lines) {
      const loc = recs[ri];
      if (clean && hasher && hasher.digest("hex") !== loc.record.head) {
        problem(
          "edited",
          `${file}:${loc.record.from + 1}-${loc.record.lines}`,
          `the lines do not match the signed head of checkpoint ${loc.record.seq} (${loc.sidecar}:${loc.lineNo})`,
        );
      }
      ri++;
      hasher = null;
      clean = true;
    }
  };
  let i = 0;
  for (;;) {
    settle(i);
    const o = await obs.peek(0);
    if (i >= total) {
      if (o) {
        let n = 0, last = o.no;
        for (let l = await obs.take(); l; l = await obs.take()) {
          n++;
          last = l.no;
          result.lines++;
        }
        problem(
          "unverified",
          `${file}:${o.no}${last > o.no ? `-${last}` : ""}`,
          `${n} line(s) after the last checkpoint: no checkpoint covers them (written after it, or appended)`,
        );
      }
      return;
    }
    const rec = recordAt(i);
    if (!rec) {
      // Lines no valid checkpoint covers (a new chain began after them, or forged records).
      const end = recs[ri].record.from;
      let n = 0;
      const firstNo = o?.no;
      while (i < end && (await obs.peek(0))) {
        await obs.take();
        result.lines++;
        i++;
        n++;
      }
      if (n > 0) {
        problem(
          "unverified",
          `${file}:${firstNo}${n > 1 ? `-${firstNo! + n - 1}` : ""}`,
          `${n} line(s) no valid checkpoint covers`,
        );
      }
      i = end;
      continue;
    }
    if (hasher === null) {
      if (i === rec.record.from) hasher = createHash("sha256").update(rec.record.base);
      else clean = false;
    }
    if (!o) {
      problem(
        "truncated",
        file,
        `cut short after line ${i}: lines ${i + 1}-${total} (${where(i)}${
          total - 1 !== i ? ` to ${where(total - 1)}` : ""
        }) are missing`,
      );
      return;
    }
    const e = expect(i)!;
    if (o.complete && short(o.digest) === e) {
      hasher?.update(o.digest);
      await obs.take();
      result.lines++;
      i++;
      continue;
    }
    clean = false;
    if (!o.complete && !(await obs.peek(1))) {
      problem(
        "truncated",
        `${file}:${o.no}`,
        `cut mid-line: the last line is incomplete${
          total > i + 1 ? ` and lines ${i + 2}-${total} are missing` : ""
        } (${where(i)})`,
      );
      result.lines++;
      return;
    }
    const o1 = await obs.peek(1);
    const e1 = i + 1 < total ? expect(i + 1) : null;
    if (o1 && e1 !== null && short(o.digest) === e1 && short(o1.digest) === e) {
      problem(
        "reordered",
        `${file}:${o.no}`,
        `lines ${o.no} and ${o1.no} are swapped (${where(i)})`,
      );
      await obs.take();
      await obs.take();
      result.lines += 2;
      i += 2;
      continue;
    }
    let k = 1;
    while (k <= WINDOW && i + k < total && expect(i + k) !== short(o.digest)) k++;
    if (k <= WINDOW && i + k < total) {
      problem(
        "removed",
        `${file}:${o.no}`,
        `${k} line(s) removed before this line (lines ${i + 1}${
          k > 1 ? `-${i + k}` : ""
        } as signed, ${where(i)})`,
      );
      i += k;
      continue;
    }
    if (o1 && short(o1.digest) === e) {
      problem("inserted", `${file}:${o.no}`, `line inserted (not in ${where(i)})`);
      await obs.take();
      result.lines++;
      continue;
    }
    problem("edited", `${file}:${o.no}`, `line differs from what ${where(i)} signed`);
    await obs.take();
    result.lines++;
    i++;
  }
}
