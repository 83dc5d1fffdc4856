/**
 * The tail source's checkpoint: which file (device, inode, fingerprint of its first bytes)
 * and how far into it every event has been acknowledged; written atomically, and advanced
 * only in read order over chunks whose ack settled successfully.
 *
 * @module
 */
import type { AckOutcome } from "../core/ack.ts";
import { writeFileAtomic } from "../core/atomic_file.ts";
import { dirname } from "node:path";

/**
 * How many leading bytes of a file its fingerprint covers.
 *
 * @example
 * ```ts
 * const head = bytes.subarray(0, FINGERPRINT_BYTES);
 * ```
 */
export const FINGERPRINT_BYTES = 256;

/**
 * What the checkpoint file holds (JSON).
 *
 * @example
 * ```ts
 * const cp: Checkpoint = { version: 1, path: "/var/log/audit.log", dev: 2049, ino: 131,
 *   offset: 52_113, fingerprint: "9f86d0...", fingerprintBytes: 256 };
 * ```
 */
export interface Checkpoint {
  readonly version: 1;
  /** The configured path being followed; a checkpoint for another path is ignored. */
  readonly path: string;
  /** Device and inode of the file `offset` is in (it may since have been renamed). */
  readonly dev: number;
  readonly ino: number;
  /** Every line before this byte offset has been delivered and acknowledged. */
  readonly offset: number;
  /** SHA-256 (hex) of the file's first `fingerprintBytes` bytes: tells a reused inode apart. */
  readonly fingerprint: string;
  readonly fingerprintBytes: number;
}

/**
 * The checkpoint file exists but does not hold a checkpoint.
 *
 * @example
 * ```ts
 * try { await readCheckpoint(file); } catch (e) { if (e instanceof CheckpointError) start(); }
 * ```
 */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/**
 * SHA-256 of `bytes`, hex.
 *
 * @example
 * ```ts
 * await fingerprint(new Uint8Array(0)); // "e3b0c442..."
 * ```
 */
export async function fingerprint(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether a file whose first bytes are `head` (up to {@linkcode FINGERPRINT_BYTES}) is the
 * file a checkpoint was taken of.
 *
 * @example
 * ```ts
 * if (await fingerprintMatches(head, cp)) offset = cp.offset;
 * ```
 */
export async function fingerprintMatches(head: Uint8Array, cp: Checkpoint): Promise<boolean> {
  if (head.length < cp.fingerprintBytes) return false;
  return await fingerprint(head.subarray(0, cp.fingerprintBytes)) === cp.fingerprint;
}

function isCheckpoint(v: unknown): v is Checkpoint {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  const nat = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  return o.version === 1 && typeof o.path === "string" && nat(o.dev) && nat(o.ino) &&
    nat(o.offset) && typeof o.fingerprint === "string" && nat(o.fingerprintBytes);
}

/**
 * Reads a checkpoint file: null when it does not exist, {@linkcode CheckpointError} when it
 * is not a checkpoint.
 *
 * @example
 * ```ts
 * const cp = await readCheckpoint("/var/lib/auditpipe/tail.json");
 * ```
 */
export async function readCheckpoint(file: string): Promise<Checkpoint | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file}: not JSON: ${(err as Error).message}`);
  }
  if (!isCheckpoint(v)) throw new CheckpointError(`${file}: not a tail checkpoint`);
  return v;
}

const encoder = new TextEncoder();

/**
 * Writes a checkpoint so that a crash at any moment leaves the old or the new one, never a
 * torn file: write a temporary file next to it, fsync, rename over, fsync the directory.
 *
 * @example
 * ```ts
 * await writeCheckpoint("/var/lib/auditpipe/tail.json", cp);
 * ```
 */
export async function writeCheckpoint(file: string, cp: Checkpoint): Promise<void> {
  const dir = dirname(file);
  await Deno.mkdir(dir, { recursive: true });
  // The folder's fsync is best effort: not every platform lets a folder be opened, and the
  // checkpoint is still correct (just older) without it.
  await writeFileAtomic(file, encoder.encode(JSON.stringify(cp) + "\n"), {
    mode: 0o600,
    tmp: `${file}.tmp-${Deno.pid}`,
    dirSync: "best-effort",
  });
}

/** One read's range in the commit window, from `start` to `end` (positions of any kind). */
interface Entry<P> {
  readonly start: P;
  end: P;
  /** undefined while the chunk's ack is unsettled. */
  outcome: AckOutcome | undefined;
  /** Whether the entry had nothing to acknowledge (no events): it may absorb the next one. */
  readonly empty: boolean;
}

/**
 * The reads in flight, in read order, and how far the checkpoint may advance: to the end of
 * the longest prefix of successfully settled reads. A failed read stops the window at its
 * start until {@linkcode CommitWindow.reset}; the caller re-reads from there.
 *
 * The window is bounded by the caller: it waits for {@linkcode CommitWindow.waitForRoom}
 * before each read, and reads without events merge into their neighbour.
 *
 * @example
 * ```ts
 * const w = new CommitWindow<number>({
 *   onCommit: (end) => console.log("checkpoint", end),
 *   onFail: (start, err) => console.log("re-read from", start, err.message),
 * });
 * w.push(0, 100, chunk.ack.settled);
 * w.pushSettled(100, 120); // a read with only blank or invalid lines
 * ```
 */
export class CommitWindow<P> {
  readonly #onCommit: (end: P) => void;
  readonly #onFail: (start: P, err: Error) => void;
  #entries: Entry<P>[] = [];
  #epoch = 0;
  #failed = false;
  /** Acks not settled yet, of every epoch: what is still downstream. */
  #unsettled = 0;
  #waiters: (() => void)[] = [];

  constructor(handlers: { onCommit: (end: P) => void; onFail: (start: P, err: Error) => void }) {
    this.#onCommit = handlers.onCommit;
    this.#onFail = handlers.onFail;
  }

  /** Acks handed downstream and not settled yet (including ones a reset made moot). */
  get unsettled(): number {
    return this.#unsettled;
  }

  /** Whether a read failed and the window waits for {@linkcode CommitWindow.reset}. */
  get failed(): boolean {
    return this.#failed;
  }

  /** The positions the window still refers to. */
  *positions(): Iterable<P> {
    for (const e of this.#entries) {
      yield e.start;
      yield e.end;
    }
  }

  /** Adds a read whose chunk was sent downstream with an ack settling as `settled`. */
  push(start: P, end: P, settled: Promise<AckOutcome>): void {
    const entry: Entry<P> = { start, end, outcome: undefined, empty: false };
    const epoch = this.#epoch;
    this.#entries.push(entry);
    this.#unsettled++;
    settled.then((outcome) => {
      this.#unsettled--;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
      if (epoch !== this.#epoch) return;
      entry.outcome = outcome;
      this.#advance();
    });
  }

  /** Adds a read that produced no events (blank, invalid or too long lines only). */
  pushSettled(start: P, end: P): void {
    const last = this.#entries[this.#entries.length - 1];
    if (last?.empty) last.end = end;
    else this.#entries.push({ start, end, outcome: null, empty: true });
    this.#advance();
  }

  /** Forgets every entry (after a failure, before re-reading): their outcomes no longer count. */
  reset(): void {
    this.#entries = [];
    this.#failed = false;
    this.#epoch++;
  }

  /** Resolves when fewer than `max` acks are unsettled. */
  async waitForRoom(max: number): Promise<void> {
    while (this.#unsettled >= max) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Resolves when every ack has settled, or after `timeoutMs`; returns whether all did. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#unsettled > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#waiters.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, left)),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  #advance(): void {
    while (!this.#failed && this.#entries.length > 0) {
      const head = this.#entries[0];
      if (head.outcome === undefined) return;
      if (head.outcome !== null) {
        this.#failed = true;
        this.#onFail(head.start, head.outcome);
        return;
      }
      this.#entries.shift();
      this.#onCommit(head.end);
    }
  }
}
