/**
 * `verify`'s inputs: log files paired with their `.chain` sidecars, the sidecars' records
 * read and their signatures checked, and the files put in chain order.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { basename } from "node:path";
import {
  type ChainRecord,
  parseRecord,
  recordHash,
  SIDECAR_SUFFIX,
} from "../../backends/integrity/format.ts";

/**
 * A signed record and where it is.
 *
 * @example
 * ```ts
 * const at = `${rec.sidecar}:${rec.lineNo}`;
 * ```
 */
export interface Located {
  readonly record: ChainRecord;
  /** SHA-256 of its line. */
  readonly hash: string;
  readonly sidecar: string;
  /** 1-based line in the sidecar. */
  readonly lineNo: number;
}

/**
 * A log file (or only its sidecar, when the file is missing) with its valid records.
 *
 * @example
 * ```ts
 * for (const u of units) console.log(u.log, u.records.length);
 * ```
 */
export interface Unit {
  /** The log file as given, or null when only its sidecar was. */
  readonly log: string | null;
  /** The sidecar, or null when there is none. */
  readonly sidecar: string | null;
  /** Records whose signatures verify, in sidecar order. */
  readonly records: Located[];
  /** Lines of the sidecar that are no record, or whose signature fails. */
  readonly forged: number[];
  readonly unreadable: number[];
}

/** The sidecar a log file has: `<file without .gz>.chain`. */
export function sidecarOf(log: string): string {
  return (log.endsWith(".gz") ? log.slice(0, -3) : log) + SIDECAR_SUFFIX;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pairs the paths given (logs and sidecars, any order) and reads every sidecar.
 *
 * @example
 * ```ts
 * const units = await loadUnits(["audit.log", "audit-2026-01-01T00-00-00.000.log.gz"], key);
 * ```
 */
export async function loadUnits(paths: readonly string[], key: KeyObject): Promise<Unit[]> {
  const logs = paths.filter((p) => !p.endsWith(SIDECAR_SUFFIX));
  const sidecars = new Set(paths.filter((p) => p.endsWith(SIDECAR_SUFFIX)));
  const units: Unit[] = [];
  for (const log of logs) {
    const sidecar = sidecarOf(log);
    sidecars.delete(sidecar);
    units.push(await readUnit(log, (await exists(sidecar)) ? sidecar : null, key));
  }
  for (const sidecar of sidecars) units.push(await readUnit(null, sidecar, key));
  return units;
}

/**
 * Reads a sidecar line by line. Without `withDigests`, records keep no line digests (they
 * are read again, one sidecar at a time, when its file is checked): so memory holds a few
 * hundred bytes per checkpoint of every file, and the digests of one file.
 *
 * @example
 * ```ts
 * const full = await readUnit("audit.log", "audit.log.chain", key, true);
 * ```
 */
export async function readUnit(
  log: string | null,
  sidecar: string | null,
  key: KeyObject,
  withDigests = false,
): Promise<Unit> {
  const unit: Unit = { log, sidecar, records: [], forged: [], unreadable: [] };
  if (sidecar === null) return unit;
  using file = await Deno.open(sidecar, { read: true });
  let no = 0;
  for await (
    const line of file.readable.pipeThrough(new TextDecoderStream()).pipeThrough(splitter())
  ) {
    no++;
    if (line === "") continue;
    const parsed = parseRecord(line, key);
    if (parsed === null) unit.unreadable.push(no);
    else if (!parsed.signed) unit.forged.push(no);
    else {
      const record = withDigests ? parsed.record : { ...parsed.record, digests: "" };
      unit.records.push({ record, hash: recordHash(line), sidecar, lineNo: no });
    }
  }
  return unit;
}

/** Splits text into lines (without their `\n`). */
function splitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, out) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) out.enqueue(p);
    },
    flush(out) {
      if (rest !== "") out.enqueue(rest);
    },
  });
}

/**
 * Units in chain order: each after the one whose last record its first record follows;
 * chains (and pieces whose predecessor is missing) by the time of their first record. Units
 * without valid records come last.
 *
 * @example
 * ```ts
 * const ordered = chainOrder(units);
 * ```
 */
export function chainOrder(units: readonly Unit[]): Unit[] {
  const withRecords = units.filter((u) => u.records.length > 0);
  const byLast = new Map<string, Unit>();
  for (const u of withRecords) byLast.set(u.records.at(-1)!.hash, u);
  const next = new Map<Unit, Unit>();
  const hasPrev = new Set<Unit>();
  for (const u of withRecords) {
    const prev = u.records[0].record.prev;
    const before = prev === null ? undefined : byLast.get(prev);
    if (before && before !== u) {
      next.set(before, u);
      hasPrev.add(u);
    }
  }
  const starts = withRecords.filter((u) => !hasPrev.has(u))
    .sort((a, b) => a.records[0].record.time.localeCompare(b.records[0].record.time));
  const out: Unit[] = [];
  const seen = new Set<Unit>();
  for (let u of starts) {
    for (let w: Unit | undefined = u; w && !seen.has(w); w = next.get(w)) {
      seen.add(w);
      out.push(w);
      u = w;
    }
  }
  for (const u of withRecords) if (!seen.has(u)) out.push(u);
  for (const u of units) if (u.records.length === 0) out.push(u);
  return out;
}

/**
 * How a unit is named in messages: its log file, or the file its sidecar names.
 *
 * @example
 * ```ts
 * unitName(u); // "audit.log"
 * ```
 */
export function unitName(u: Unit): string {
  if (u.log !== null) return u.log;
  const named = u.records.at(-1)?.record.file;
  return named ?? basename(u.sidecar!.slice(0, -SIDECAR_SUFFIX.length));
}
