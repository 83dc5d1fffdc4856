/**
 * The live view: the alternate screen redrawn every interval with plain ANSI (cursor home,
 * clear to end of line and screen; nothing a terminal over SSH lacks), raw mode so that `q`
 * and Ctrl-C arrive as keys, and the terminal restored however the loop ends.
 *
 * @module
 */
import { errorMessage } from "../../pipeline/core/errors.ts";
import { writeAllSync } from "../write_all.ts";
import { renderTop } from "./render.ts";
import { scrape } from "./scrape.ts";
import type { Scrape } from "./rates.ts";
import { type TopView, topView } from "./view.ts";

const ENTER = "\x1b[?1049h\x1b[?25l"; // alternate screen, cursor hidden
const LEAVE = "\x1b[?25h\x1b[?1049l"; // cursor shown, main screen back
const CTRL_C = 0x03;
const QUIT_KEYS = new Set([CTRL_C, 0x71, /* q */ 0x51 /* Q */]);

const encoder = new TextEncoder();

const writeAll = (text: string) => writeAllSync(Deno.stdout, encoder.encode(text));

/**
 * Options of {@linkcode runLive}.
 *
 * @example
 * ```ts
 * const opts: LiveOptions = { url, intervalMs: 1000, timeoutMs: 2000, first };
 * ```
 */
export interface LiveOptions {
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** The scrape that showed the daemon answers. */
  readonly first: Scrape;
}

/**
 * Runs the live view until `q` or Ctrl-C (or SIGINT, SIGTERM, SIGHUP); returns 0. A scrape
 * that fails keeps the last numbers on screen under `UNREACHABLE since …`.
 *
 * @example
 * ```ts
 * return await runLive({ url, intervalMs: 1000, timeoutMs: 2000, first: await scrape(url, 2000) });
 * ```
 */
export async function runLive(opts: LiveOptions): Promise<number> {
  let before: Scrape | null = null;
  let after = opts.first;
  let takenAt = new Date();
  let unreachable = null as TopView["unreachable"];

  let quit!: () => void;
  const quitting = new Promise<void>((r) => quit = r);
  const raw = Deno.stdin.isTerminal();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const redraw = () => draw();
  const draw = () => {
    const { columns, rows } = Deno.consoleSize();
    const view = topView(before, after, { url: opts.url, takenAt, unreachable });
    const keys = raw ? "q quits" : "Ctrl-C quits";
    const lines = renderTop(view, { width: columns, height: rows, footer: keys });
    // No newline after the last line: the screen must not scroll.
    writeAll("\x1b[H" + lines.map((l) => l + "\x1b[K").join("\r\n") + "\x1b[J");
  };

  writeAll(ENTER);
  if (raw) Deno.stdin.setRaw(true);
  for (const s of signals) Deno.addSignalListener(s, quit);
  Deno.addSignalListener("SIGWINCH", redraw);
  try {
    if (raw) void readKeys(quit);
    draw();
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<"tick">((r) => timer = setTimeout(() => r("tick"), opts.intervalMs));
      const why = await Promise.race([tick, quitting.then(() => "quit" as const)]);
      clearTimeout(timer);
      if (why === "quit") break;
      try {
        const next = await Promise.race([
          scrape(opts.url, opts.timeoutMs),
          quitting.then(() => null),
        ]);
        if (next === null) break;
        before = after;
        after = next;
        takenAt = new Date();
        unreachable = null;
      } catch (err) {
        unreachable = { since: unreachable?.since ?? new Date(), error: errorMessage(err) };
      }
      draw();
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, quit);
    Deno.removeSignalListener("SIGWINCH", redraw);
    // After SIGHUP (an SSH connection that dropped) the terminal may be gone: nothing to restore.
    try {
      if (raw) Deno.stdin.setRaw(false);
      writeAll(LEAVE);
    } catch { /* the terminal is gone */ }
  }
  return 0;
}

/** Calls `quit` on `q`, `Q`, Ctrl-C, or when stdin ends. */
async function readKeys(quit: () => void): Promise<void> {
  const buf = new Uint8Array(64);
  for (;;) {
    let n: number | null;
    try {
      n = await Deno.stdin.read(buf);
    } catch {
      n = null;
    }
    if (n === null) return quit();
    if (buf.subarray(0, n).some((b) => QUIT_KEYS.has(b))) return quit();
  }
}
