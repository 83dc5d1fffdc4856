/**
 * The delivery cursor: the segment and offset of the first record not yet delivered. It is
 * replaced atomically (core/atomic_file.ts), so after a crash it is either the old or the new
 * one, never a mix.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic_file.ts";
import { CURSOR_FILE } from "./layout.ts";

/** A position in the buffer: records in lower segments, and before `offset` in `segment`. */
export interface Cursor {
  readonly segment: number;
  readonly offset: number;
}

/** The cursor read from disk, or why it could not be. */
export type CursorRead =
  | { readonly kind: "ok"; readonly cursor: Cursor }
  | { readonly kind: "missing" }
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Reads `dir`'s cursor.
 *
 * @example
 * ```ts
 * const c = await readCursor("/var/lib/auditpipe/buf"); // { kind: "ok", cursor: {...} }
 * ```
 */
export async function readCursor(dir: string): Promise<CursorRead> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, CURSOR_FILE));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { kind: "missing" };
    throw err;
  }
  try {
    const v = JSON.parse(text) as { segment?: unknown; offset?: unknown };
    if (
      Number.isSafeInteger(v.segment) && Number.isSafeInteger(v.offset) &&
      (v.segment as number) >= 0 && (v.offset as number) >= 0
    ) {
      return { kind: "ok", cursor: { segment: v.segment as number, offset: v.offset as number } };
    }
    return { kind: "invalid", reason: `not {segment, offset}: ${text.slice(0, 100)}` };
  } catch (err) {
    return { kind: "invalid", reason: (err as Error).message };
  }
}

/**
 * Replaces `dir`'s cursor atomically and durably.
 *
 * @example
 * ```ts
 * await writeCursor("/var/lib/auditpipe/buf", { segment: 3, offset: 4096 });
 * ```
 */
export async function writeCursor(dir: string, cursor: Cursor): Promise<void> {
  const data = JSON.stringify({ version: 1, segment: cursor.segment, offset: cursor.offset });
  await writeFileAtomic(join(dir, CURSOR_FILE), new TextEncoder().encode(data + "\n"));
}
