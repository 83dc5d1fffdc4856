/**
 * The tamper-evidence format shared by the log sink (which writes it) and `auditpipe verify`
 * (which checks it): line digests, the chain of interval heads, and signed checkpoint records
 * in a sidecar file beside each log file (`audit.log.chain`).
 *
 * Chain. Every line written (its exact bytes, `\n` included) has a digest
 * `d = SHA-256(line)`. A checkpoint covers the lines written since the previous one (its
 * interval) and carries the chain head `head = SHA-256(base ‖ d₁ ‖ … ‖ dₙ)` over the hex
 * texts, where `base` is the previous checkpoint's head; the first `base` is
 * `SHA-256("auditpipe-chain/1\0" ‖ sink ‖ "\0" ‖ chain id)`. So every line extends the chain
 * through its digest, and the head after any line depends on every line before it, across
 * files (rotation keeps one chain).
 *
 * Checkpoint. One JSON line per record in the sidecar: which file and where (`lines`,
 * `offset`), the interval (`from`, and the first 8 hex digits of each line's digest, in order,
 * so that `verify` can name the line that differs and tell an edit from a removal, an
 * insertion or a swap), `base` and `head`, the wall time, `prev` (SHA-256 of the previous
 * record's line, so a removed record or file is seen) and an Ed25519 signature over the
 * record's bytes up to the signature. Measured: one native SHA-256 call per line costs far
 * less than a link hash per line plus a digest per line (two calls), and the head is one call
 * per checkpoint; the line digests are computed on a worker thread (see `hasher.ts`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createPublicKey, hash, type KeyObject, sign, verify } from "node:crypto";

/** Version of the record format. */
export const CHAIN_VERSION = 1;
/** The sidecar of a log file is the file's name plus this. */
export const SIDECAR_SUFFIX = ".chain";
/** Hex digits of each line's digest a checkpoint keeps, to find a line that differs. */
export const SHORT_DIGEST = 8;

/**
 * Why a record was written.
 *
 * - `open`: the sink started (a new chain when `prev` is null; otherwise a restart, with
 *   `recovered` lines written after the last checkpoint before it, chained now);
 * - `checkpoint`: `checkpointEvery` events or time;
 * - `rotate`: the last record of a file that was rotated (`next` names the new file);
 * - `rotated`: the first record of the new file (`prevFile` names the backup);
 * - `reopen`: SIGHUP or the file was found removed or replaced;
 * - `close`: shutdown;
 * - `pruned`: retention (`rotate.maxBackup` / `maxAge`) is about to remove a backup; the
 *   record's `pruned` names it and the last record of its sidecar, so that `verify` tells the
 *   file's absence from a deletion.
 *
 * @example
 * ```ts
 * const kind: RecordKind = "checkpoint";
 * ```
 */
export type RecordKind =
  | "open"
  | "checkpoint"
  | "rotate"
  | "rotated"
  | "reopen"
  | "close"
  | "pruned";

/**
 * What a `pruned` record says about the backup retention removes.
 *
 * @example
 * ```ts
 * const p: PrunedInfo = { file: "audit-2026-01-01T00-00-00.000.log", reason: "maxBackup",
 *   last: "9c1f…", seq: 41, lines: 5120, head: "77ab…" };
 * ```
 */
export interface PrunedInfo {
  /** Base name of the backup (without `.gz`), as its records name it. */
  readonly file: string;
  /** The limit that removes it. */
  readonly reason: "maxBackup" | "maxAge";
  /**
   * SHA-256 of the last line of the backup's sidecar, which the next file's first record
   * names as `prev`; null when the backup had no sidecar signed with this key (written before
   * `integrity` was on, or its sidecar was lost).
   */
  readonly last: string | null;
  /** That record's `seq`, `lines` and `head` (null with `last`). */
  readonly seq: number | null;
  readonly lines: number | null;
  readonly head: string | null;
}

/**
 * One checkpoint record, as signed.
 *
 * @example
 * ```ts
 * const r: ChainRecord = parseRecord(line).record;
 * console.log(r.file, r.lines, r.head);
 * ```
 */
export interface ChainRecord {
  readonly v: number;
  /** Random id of the chain (hex), new when the sink starts without a usable checkpoint. */
  readonly chain: string;
  /** The sink's name. */
  readonly sink: string;
  /** Position of the record in its chain, from 0. */
  readonly seq: number;
  readonly kind: RecordKind;
  /** Base name of the log file the lines are in (a backup's name once rotated). */
  readonly file: string;
  /** The previous file of the chain (`rotated`), or null. */
  readonly prevFile: string | null;
  /** The file the chain goes on in (`rotate`), or null. */
  readonly next: string | null;
  /** Lines in the file before the interval. */
  readonly from: number;
  /** Lines in the file after the interval (the interval is `from + 1 … lines`). */
  readonly lines: number;
  /** Bytes in the file after the interval. */
  readonly offset: number;
  /** Short digests of the interval's lines, `SHORT_DIGEST` hex digits each. */
  readonly digests: string;
  /** The chain head before the interval. */
  readonly base: string;
  /** The chain head after it. */
  readonly head: string;
  /** `open` after a crash: lines found after the last checkpoint and chained now. */
  readonly recovered: number;
  /** Wall time, RFC 3339. */
  readonly time: string;
  /** SHA-256 (hex) of the previous record's line, or null for the first of a chain. */
  readonly prev: string | null;
  /** Fingerprint of the public key that verifies `sig`. */
  readonly key: string;
  /** `pruned` records only: the backup removed. */
  readonly pruned?: PrunedInfo;
}

/**
 * The digest of one line (its exact bytes, newline included), hex.
 *
 * @example
 * ```ts
 * lineDigest(new TextEncoder().encode("{}\n")).length; // 64
 * ```
 */
export function lineDigest(line: Uint8Array): string {
  // One-shot `hash` with hex output: measured the cheapest per call of node:crypto's APIs.
  return hash("sha256", line, "hex");
}

/**
 * The head of a chain before its first line.
 *
 * @example
 * ```ts
 * const base = genesisHead("audit-log", "9f2c…");
 * ```
 */
export function genesisHead(sink: string, chain: string): string {
  return createHash("sha256").update(`auditpipe-chain/${CHAIN_VERSION}\0${sink}\0${chain}`)
    .digest("hex");
}

/**
 * The head after the lines whose digests are given (concatenated hex), starting from `base`.
 *
 * @example
 * ```ts
 * const head = extendHead(base, lineDigest(line1) + lineDigest(line2));
 * ```
 */
export function extendHead(base: string, digests: string): string {
  if (digests === "") return base;
  return createHash("sha256").update(base).update(digests).digest("hex");
}

/**
 * The short digests a record keeps, from the full ones (concatenated hex).
 *
 * @example
 * ```ts
 * shortDigests(lineDigest(line)).length; // SHORT_DIGEST
 * ```
 */
export function shortDigests(digests: string): string {
  let out = "";
  for (let i = 0; i < digests.length; i += 64) out += digests.slice(i, i + SHORT_DIGEST);
  return out;
}

/**
 * SHA-256 (hex) of a record's line, as the next record's `prev` names it.
 *
 * @example
 * ```ts
 * const prev = recordHash(line);
 * ```
 */
export function recordHash(line: string): string {
  return createHash("sha256").update(line).digest("hex");
}

/**
 * The fingerprint of a public key: `SHA256:` and the base64 of the SHA-256 of its DER (SPKI).
 *
 * @example
 * ```ts
 * keyFingerprint(createPublicKey(pem)); // "SHA256:3q2+7w…"
 * ```
 */
export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const der = pub.export({ type: "spki", format: "der" });
  return "SHA256:" + createHash("sha256").update(der).digest("base64").replace(/=+$/, "");
}

const SIG = ',"sig":"';

/**
 * The sidecar line of `record`: its JSON with an Ed25519 signature over the bytes before
 * the signature field (and the closing brace), without the newline.
 *
 * @example
 * ```ts
 * await file.write(new TextEncoder().encode(signRecord(record, privateKey) + "\n"));
 * ```
 */
export function signRecord(record: ChainRecord, key: KeyObject): string {
  const body = JSON.stringify(record);
  const signed = new TextEncoder().encode(body);
  const sig = sign(null, signed, key).toString("base64");
  return `${body.slice(0, -1)}${SIG}${sig}"}`;
}

/**
 * A sidecar line parsed: the record, and whether its signature verifies with `key`; null when
 * the line is no record at all.
 *
 * @example
 * ```ts
 * const parsed = parseRecord(line, publicKey);
 * if (parsed && !parsed.signed) console.log("forged checkpoint");
 * ```
 */
export function parseRecord(
  line: string,
  key: KeyObject,
): { record: ChainRecord; signed: boolean } | null {
  const at = line.lastIndexOf(SIG);
  if (at < 0 || !line.endsWith('"}')) return null;
  let record: ChainRecord;
  let sig: string;
  try {
    const all = JSON.parse(line);
    if (typeof all !== "object" || all === null || typeof all.sig !== "string") return null;
    sig = all.sig;
    delete all.sig;
    record = all as ChainRecord;
  } catch {
    return null;
  }
  if (!isRecord(record)) return null;
  let signed = false;
  try {
    const body = new TextEncoder().encode(line.slice(0, at) + "}");
    signed = verify(null, body, key, Buffer.from(sig, "base64"));
  } catch {
    signed = false;
  }
  return { record, signed };
}

function isRecord(r: ChainRecord): boolean {
  const str = (v: unknown) => typeof v === "string";
  const num = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  return r.v === CHAIN_VERSION && str(r.chain) && str(r.sink) && num(r.seq) && str(r.kind) &&
    str(r.file) && num(r.from) && num(r.lines) && num(r.offset) && str(r.digests) &&
    r.digests.length === (r.lines - r.from) * SHORT_DIGEST && str(r.base) && str(r.head) &&
    str(r.time) && (r.prev === null || str(r.prev)) && num(r.recovered) &&
    (r.kind === "pruned") === (r.pruned !== undefined) &&
    (r.pruned === undefined || isPrunedInfo(r.pruned));
}

function isPrunedInfo(p: PrunedInfo): boolean {
  const orNull = (v: unknown, t: "string" | "number") => v === null || typeof v === t;
  return typeof p === "object" && p !== null && typeof p.file === "string" &&
    (p.reason === "maxBackup" || p.reason === "maxAge") && orNull(p.last, "string") &&
    orNull(p.seq, "number") && orNull(p.lines, "number") && orNull(p.head, "string");
}
