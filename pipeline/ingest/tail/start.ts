/**
 * Where a tail source starts: from its checkpoint (the checkpointed file, wherever rotation
 * moved it, at the checkpointed offset), else at the start or the end of the file as
 * configured.
 *
 * @module
 */
import type { Logger } from "../../core/log.ts";
import { errorText } from "../../core/errors.ts";
import { type Checkpoint, fingerprintMatches, readCheckpoint } from "../checkpoint.ts";
import { type OpenFile, type OpenFiles, statOrNull } from "./open_file.ts";
import { findRotated } from "./rotation.ts";

/** How far from the end `startAt: end` looks for the start of the last line. */
const TAIL_SCAN_BYTES = 64 * 1024;

/**
 * The file to follow first and where in it; `skipFirstLine` when the offset is inside a line
 * that must not be delivered torn.
 *
 * @example
 * ```ts
 * const s: Start = { h, offset: 0, skipFirstLine: false };
 * ```
 */
export interface Start {
  readonly h: OpenFile;
  readonly offset: number;
  readonly skipFirstLine: boolean;
}

/**
 * What {@linkcode startPosition} needs of the source's config.
 *
 * @example
 * ```ts
 * const where: StartConfig = { path: "/var/log/audit.log", startAt: "end" };
 * ```
 */
export interface StartConfig {
  readonly path: string;
  readonly startAt: "beginning" | "end";
  readonly checkpointFile?: string;
}

/**
 * Where to start following `cfg.path`; null when the file does not exist yet. An unreadable
 * checkpoint, or one of another path, is logged and ignored.
 *
 * @example
 * ```ts
 * const start = await startPosition(files, cfg, log);
 * if (start !== null) follow(start.h, start.offset, start.skipFirstLine);
 * ```
 */
export async function startPosition(
  files: OpenFiles,
  cfg: StartConfig,
  log: Logger,
): Promise<Start | null> {
  let cp: Checkpoint | null = null;
  if (cfg.checkpointFile !== undefined) {
    try {
      cp = await readCheckpoint(cfg.checkpointFile);
    } catch (err) {
      log.warn("checkpoint unreadable; ignoring it", {
        checkpoint: cfg.checkpointFile,
        error: errorText(err),
      });
    }
    if (cp !== null && cp.path !== cfg.path) {
      log.warn("checkpoint is for another path; ignoring it", { checkpointPath: cp.path });
      cp = null;
    }
  }
  return cp !== null ? await resume(files, cfg.path, cp, log) : await fresh(files, cfg);
}

const at = (h: OpenFile, offset: number, skipFirstLine = false): Start => ({
  h,
  offset,
  skipFirstLine,
});

async function fresh(files: OpenFiles, cfg: StartConfig): Promise<Start | null> {
  let h: OpenFile;
  try {
    h = await files.open(cfg.path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  if (cfg.startAt === "beginning") return at(h, 0);
  const { offset, skip } = await lastLineStart(h);
  return at(h, offset, skip);
}

/**
 * Where `startAt: end` starts: the end of the file, or the start of its last line when
 * that is still being written (so it is delivered whole, not torn).
 */
async function lastLineStart(h: OpenFile): Promise<{ offset: number; skip: boolean }> {
  const size = h.size;
  if (size === 0) return { offset: 0, skip: false };
  const from = Math.max(0, size - TAIL_SCAN_BYTES);
  const block = new Uint8Array(size - from);
  const have = await h.readFull(block, from);
  const nl = block.subarray(0, have).lastIndexOf(0x0a);
  if (nl === have - 1) return { offset: from + have, skip: false };
  if (nl >= 0) return { offset: from + nl + 1, skip: false };
  if (from === 0) return { offset: 0, skip: false };
  return { offset: from + have, skip: true };
}

async function resume(
  files: OpenFiles,
  path: string,
  cp: Checkpoint,
  log: Logger,
): Promise<Start | null> {
  const st = await statOrNull(path);
  if (st !== null && st.dev === cp.dev && (st.ino ?? 0) === cp.ino) {
    const h = await files.open(path);
    if (h.is(cp) && await fingerprintMatches(h.head, cp)) {
      if (cp.offset <= h.size) return at(h, cp.offset);
      log.warn("file is shorter than the checkpoint; reading it from the start", {
        offset: cp.offset,
        size: h.size,
      });
      return at(h, 0);
    }
    log.info("checkpointed file was replaced; reading the current file from the start");
    return at(h, 0);
  }
  const old = await findRotated(files, path, cp);
  if (old !== null) {
    log.info("checkpointed file was rotated; finishing it first", {
      file: old.name,
      offset: cp.offset,
    });
    return at(old, cp.offset <= old.size ? cp.offset : 0);
  }
  log.warn("checkpointed file is gone; reading the current file from the start", {
    dev: cp.dev,
    ino: cp.ino,
  });
  if (st === null) return null;
  try {
    return at(await files.open(path), 0);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return null;
  }
}
