/**
 * A real terminal for tests: a detached tmux session on a private socket (the developer's
 * own tmux server and config are never touched), with what its pane shows, its modes and the
 * raw bytes programs wrote to it.
 *
 * @module
 */
import { requireProgram } from "./external.ts";
import { waitFor } from "./wait.ts";

/**
 * A tmux session of one pane.
 *
 * @example
 * ```ts
 * const term: Terminal = await startTerminal(dir, "exec top");
 * await term.keys("q");
 * ```
 */
export interface Terminal {
  /** The text the pane shows now (`capture-pane -p`), trailing blank lines removed. */
  screen(): Promise<string>;
  /** A tmux format of the pane, such as `#{alternate_on}` or `#{cursor_flag}`. */
  format(fmt: string): Promise<string>;
  /** Sends keys (`send-keys` names: `q`, `C-c`, `Enter`). */
  keys(...keys: string[]): Promise<void>;
  /** Waits until the screen satisfies `pred`; returns that screen. */
  waitScreen(what: string, pred: (screen: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Everything written to the pane so far, escape sequences included (`pipe-pane`). */
  written(): Promise<string>;
  /** Ends the session and its server. */
  close(): Promise<void>;
}

/**
 * Shell-quotes `s` for sh.
 *
 * @example
 * ```ts
 * shQuote("it's"); // 'it'\''s'
 * ```
 */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function run(args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Starts `sh -c script` in a detached `columns`x`rows` session whose socket and pane log live
 * in `dir`.
 *
 * @example
 * ```ts
 * const term = await startTerminal(dir, "exec top", { columns: 80, rows: 24 });
 * await term.waitScreen("top's header", (s) => s.includes("auditpipe top"));
 * await term.close();
 * ```
 */
export async function startTerminal(
  dir: string,
  script: string,
  size: { columns: number; rows: number } = { columns: 80, rows: 24 },
): Promise<Terminal> {
  requireProgram("tmux");
  const socket = `${dir}/tmux.sock`;
  const log = `${dir}/pane.log`;
  const go = `${dir}/term.go`;
  // The script starts once the pane's output is logged (pipe-pane comes after the session).
  await Deno.writeTextFile(
    `${dir}/term.sh`,
    `while [ ! -e ${shQuote(go)} ]; do sleep 0.05; done\n${script}\n`,
  );
  const tmux = (...args: string[]) => run(["-S", socket, ...args]);
  // No config file (-f /dev/null): the developer's ~/.tmux.conf must not change the pane.
  await run([
    "-S",
    socket,
    "-f",
    "/dev/null",
    "new-session",
    "-d",
    "-s",
    "t",
    "-x",
    String(size.columns),
    "-y",
    String(size.rows),
    `sh ${shQuote(`${dir}/term.sh`)}`,
  ]);
  await tmux("pipe-pane", "-t", "t", "-o", `cat >> ${shQuote(log)}`);
  await Deno.writeTextFile(go, "");
  const screen = async () => (await tmux("capture-pane", "-p", "-t", "t")).trimEnd();
  return {
    screen,
    format: async (fmt) => (await tmux("display-message", "-p", "-t", "t", fmt)).trim(),
    keys: async (...keys) => void await tmux("send-keys", "-t", "t", ...keys),
    async waitScreen(what, pred, timeoutMs) {
      let last = "";
      await waitFor(what, async () => pred(last = await screen()), {
        timeoutMs,
        intervalMs: 100,
        detail: () => `the screen:\n${last}`,
      });
      return last;
    },
    written: async () => {
      try {
        return await Deno.readTextFile(log);
      } catch {
        return "";
      }
    },
    close: async () => {
      await tmux("kill-server").catch(() => {});
    },
  };
}
