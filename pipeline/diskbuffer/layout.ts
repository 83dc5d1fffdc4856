/**
 * Where a buffer keeps its files: numbered segments (`00000000000000000001.seg`, appended to
 * in order, the highest being written; an empty one above it is the next, made ahead) and the
 * delivery cursor (`cursor.json`).
 *
 * @module
 */
import { join } from "node:path";

/** The cursor's file name. */
export const CURSOR_FILE = "cursor.json";
const SEGMENT_RE = /^(\d{20})\.seg$/;

/**
 * The path of segment `id` in `dir`.
 *
 * @example
 * ```ts
 * segmentPath("/var/lib/auditpipe/buf", 3); // ".../00000000000000000003.seg"
 * ```
 */
export function segmentPath(dir: string, id: number): string {
  return join(dir, `${String(id).padStart(20, "0")}.seg`);
}

/**
 * The ids of the segments in `dir` that hold bytes, lowest first. An empty segment file is the
 * next segment, made ahead of a roll (see commit.ts): it holds nothing and is listed only with
 * `empty: true` (recovery, which removes it).
 *
 * @example
 * ```ts
 * await listSegments("/var/lib/auditpipe/buf"); // [3, 4, 5]
 * ```
 */
export async function listSegments(
  dir: string,
  opts: { readonly empty?: boolean } = {},
): Promise<number[]> {
  const ids: number[] = [];
  for await (const e of Deno.readDir(dir)) {
    const m = e.isFile ? SEGMENT_RE.exec(e.name) : null;
    if (m === null) continue;
    if (!opts.empty) {
      try {
        if ((await Deno.stat(join(dir, e.name))).size === 0) continue;
      } catch (err) {
        // Deleted since it was listed (delivered).
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
    }
    ids.push(Number(m[1]));
  }
  return ids.sort((a, b) => a - b);
}
