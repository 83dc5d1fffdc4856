/**
 * Headless Chromium for tests that open a page the project writes (`policy report --html`):
 * one browser per test file, driven over the DevTools protocol on 127.0.0.1, which records
 * every request a page makes, its console and log messages (script errors, Content Security
 * Policy refusals), evaluates expressions in it and takes screenshots. Host names resolve
 * nowhere (`--host-resolver-rules`), so a page that tried to fetch something fails to, and
 * the attempt is still recorded.
 *
 * @module
 */
import { PROGRAMS, requireProgram } from "./external.ts";
import { deadline, waitFor } from "./wait.ts";

/** How long the browser may take to start, load a page or answer, on a loaded machine. */
const BROWSER_MS = 60_000;

type Params = Record<string, unknown>;

interface Message {
  id?: number;
  method?: string;
  params?: Params;
  result?: Params;
  error?: { message: string };
  sessionId?: string;
}

/**
 * A page opened in {@linkcode Headless}: what it requested and said, and ways to look at it.
 *
 * @example
 * ```ts
 * const page = await browser.visit(`file://${dir}/report.html`);
 * assert.deepEqual(page.requests, [`file://${dir}/report.html`]);
 * const title = await page.evaluate<string>("document.title");
 * await page.close();
 * ```
 */
export interface Visit {
  /** The URL of every request the page made (`Network.requestWillBeSent`), in order. */
  readonly requests: readonly string[];
  /** Console messages, uncaught exceptions and browser log entries, as `level: text`. */
  readonly messages: readonly string[];
  /** The value of a JavaScript expression evaluated in the page (awaited, JSON-able). */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the whole page laid out `width` pixels wide (`height` for just the top). */
  screenshot(width: number, height?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * A headless Chromium started for a test, on a temporary profile removed by `close`.
 *
 * @example
 * ```ts
 * const browser = await Headless.launch();
 * try {
 *   const page = await browser.visit("file:///tmp/report.html");
 * } finally {
 *   await browser.close();
 * }
 * ```
 */
export class Headless {
  #next = 1;
  readonly #pending = new Map<number, (m: Message) => void>();
  readonly #listeners = new Map<string, (m: Message) => void>();

  private constructor(
    readonly child: Deno.ChildProcess,
    readonly profile: string,
    readonly socket: WebSocket,
    readonly stderr: { text: string; done: Promise<void> },
  ) {
    socket.onmessage = (e) => {
      const m: Message = JSON.parse(String(e.data));
      if (m.id !== undefined) {
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      } else if (m.sessionId !== undefined) this.#listeners.get(m.sessionId)?.(m);
    };
  }

  /** Starts the browser (`CHROMIUM` may name it) and connects to it. */
  static async launch(): Promise<Headless> {
    requireProgram("chromium");
    const profile = await Deno.makeTempDir({ prefix: "auditpipe-chromium-" });
    const child = new Deno.Command(PROGRAMS.chromium.command(), {
      args: [
        "--headless=new",
        // Tests run as root in containers, where Chromium's sandbox cannot start.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Drained, or Chromium would block on a full pipe; the end is kept for error messages.
    const stderr = { text: "", done: Promise.resolve() };
    stderr.done = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr.text = (stderr.text + dec.decode(chunk)).slice(-8000);
      }
    })();
    try {
      // Chromium writes the port it took, and the browser's DevTools path, when it listens.
      let active = "";
      await waitFor("chromium's DevToolsActivePort file", async () => {
        active = await Deno.readTextFile(`${profile}/DevToolsActivePort`).catch(() => "");
        return active.includes("\n");
      }, { timeoutMs: BROWSER_MS, intervalMs: 50, detail: () => `stderr: ${stderr.text}` });
      const [port, path] = active.split("\n");
      const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
      await deadline(
        new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = () => reject(new Error(`cannot connect to chromium on port ${port}`));
        }),
        "chromium's DevTools socket",
        BROWSER_MS,
      );
      return new Headless(child, profile, socket, stderr);
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      await stderr.done;
      await Deno.remove(profile, { recursive: true });
      throw e;
    }
  }

  /** Sends a DevTools command (to a page when `sessionId` is given) and returns its result. */
  send(method: string, params: Params = {}, sessionId?: string): Promise<Params> {
    const id = this.#next++;
    const reply = new Promise<Params>((resolve, reject) => {
      this.#pending.set(id, (m) => {
        if (m.error) reject(new Error(`${method}: ${m.error.message}`));
        else resolve(m.result ?? {});
      });
    });
    this.socket.send(JSON.stringify({ id, method, params, sessionId }));
    return deadline(reply, `chromium's answer to ${method}`, BROWSER_MS);
  }

  /** Opens `url` in a new tab, recording from before it is requested, and waits for its load. */
  async visit(url: string): Promise<Visit> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const session = String(sessionId);
    const requests: string[] = [];
    const messages: string[] = [];
    let loaded = false;
    this.#listeners.set(session, (m) => {
      const p = m.params ?? {};
      if (m.method === "Network.requestWillBeSent") {
        requests.push(String((p.request as { url: string }).url));
      } else if (m.method === "Page.loadEventFired") loaded = true;
      else if (m.method === "Runtime.consoleAPICalled") {
        const args = (p.args as { value?: unknown; description?: string }[]) ?? [];
        messages.push(`console.${p.type}: ${args.map((a) => a.value ?? a.description).join(" ")}`);
      } else if (m.method === "Runtime.exceptionThrown") {
        const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
        messages.push(`exception: ${d.exception?.description ?? d.text}`);
      } else if (m.method === "Log.entryAdded") {
        const e = p.entry as { level: string; text: string; url?: string };
        messages.push(`${e.level}: ${e.text}${e.url ? ` (${e.url})` : ""}`);
      }
    });
    for (const domain of ["Network", "Page", "Runtime", "Log"]) {
      await this.send(`${domain}.enable`, {}, session);
    }
    const nav = await this.send("Page.navigate", { url }, session);
    if (nav.errorText) throw new Error(`chromium could not open ${url}: ${nav.errorText}`);
    await waitFor(`${url} to load`, () => loaded, { timeoutMs: BROWSER_MS });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await this.send(
        "Runtime.evaluate",
        { expression, returnByValue: true, awaitPromise: true },
        session,
      );
      if (r.exceptionDetails) {
        throw new Error(`${expression}: ${JSON.stringify(r.exceptionDetails)}`);
      }
      return (r.result as { value: T }).value;
    };
    return {
      requests,
      messages,
      evaluate,
      screenshot: async (width, height) => {
        const metrics = { width, height: height ?? 800, deviceScaleFactor: 1, mobile: false };
        await this.send("Emulation.setDeviceMetricsOverride", metrics, session);
        const full = height ?? await evaluate<number>("document.documentElement.scrollHeight");
        const shot = await this.send("Page.captureScreenshot", {
          format: "png",
          captureBeyondViewport: true,
          clip: { x: 0, y: 0, width, height: full, scale: 1 },
        }, session);
        return Uint8Array.from(atob(String(shot.data)), (c) => c.charCodeAt(0));
      },
      close: async () => {
        this.#listeners.delete(session);
        await this.send("Target.closeTarget", { targetId });
      },
    };
  }

  /** Closes the browser (killing it if it does not exit) and removes its profile. */
  async close(): Promise<void> {
    try {
      const closed = new Promise((resolve) => this.socket.addEventListener("close", resolve));
      await this.send("Browser.close").catch(() => {});
      this.socket.close();
      await deadline(closed, "chromium's DevTools socket to close", 10_000).catch(() => {});
      await deadline(this.child.status, "chromium to exit", 10_000).catch(() => {
        this.child.kill("SIGKILL");
        return this.child.status;
      });
      await this.stderr.done;
    } finally {
      await Deno.remove(this.profile, { recursive: true }).catch(() => {});
    }
  }
}
