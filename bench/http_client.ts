/**
 * A minimal HTTP/1.1 keep-alive client for the latency benchmark: pre-built request bytes,
 * one request at a time per connection, a pool that opens a connection when none is idle.
 *
 * `fetch` costs the sending process several times what the daemon spends on a one-event
 * request (Request/Response objects, header maps, body streams). With the sender and the
 * daemon sharing two cores, that cost showed up as latency of the daemon. kube-apiserver's
 * Go client is closer to this: bytes out, status and body in.
 *
 * @module
 */

const CRLFCRLF = [0x0d, 0x0a, 0x0d, 0x0a];
const decoder = new TextDecoder();

/**
 * The bytes of a POST of `body` to `path`, ready to write.
 *
 * @example
 * ```ts
 * const req = postRequest("/audit", new TextEncoder().encode("{}"));
 * ```
 */
export function postRequest(path: string, body: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.byteLength}\r\n\r\n`,
  );
  const out = new Uint8Array(head.byteLength + body.byteLength);
  out.set(head);
  out.set(body, head.byteLength);
  return out;
}

function indexOfHeadEnd(buf: Uint8Array, end: number): number {
  outer: for (let i = 0; i + 4 <= end; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== CRLFCRLF[j]) continue outer;
    return i;
  }
  return -1;
}

/** The server closed a kept-alive connection before answering (nothing was read). */
class ClosedIdle extends Error {
  override message = "connection closed before the response";
}

/** One keep-alive connection; `send` resolves to the response's status. */
class Connection {
  #buf = new Uint8Array(64 * 1024);
  constructor(readonly conn: Deno.TcpConn) {
    conn.setNoDelay(true);
  }

  async send(request: Uint8Array): Promise<number> {
    for (let off = 0; off < request.byteLength;) {
      off += await this.conn.write(request.subarray(off));
    }
    let have = 0;
    let head = -1;
    while (head < 0) {
      const n = await this.conn.read(this.#buf.subarray(have));
      if (n === null && have === 0) throw new ClosedIdle();
      if (n === null) throw new Error("connection closed inside the response head");
      have += n;
      head = indexOfHeadEnd(this.#buf, have);
    }
    const text = decoder.decode(this.#buf.subarray(0, head));
    const status = Number(text.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
    if (!m) throw new Error(`response without content-length: ${text}`);
    const total = head + 4 + Number(m[1]);
    while (have < total) {
      const n = await this.conn.read(this.#buf.subarray(have));
      if (n === null) throw new Error("connection closed inside the response body");
      have += n;
    }
    return status;
  }
}

/**
 * Connections to one address, reused while idle.
 *
 * @example
 * ```ts
 * const pool = new Pool(8080);
 * const status = await pool.send(postRequest("/audit", body));
 * pool.close();
 * ```
 */
export class Pool {
  #idle: Connection[] = [];
  #all: Connection[] = [];
  /** Requests sent again on a new connection because the server had closed the idle one. */
  resent = 0;
  constructor(readonly port: number, readonly hostname = "127.0.0.1") {}

  /** Number of connections opened so far. */
  get opened(): number {
    return this.#all.length;
  }

  /** Sends pre-built request bytes on an idle connection (or a new one); the status. */
  async send(request: Uint8Array): Promise<number> {
    for (let attempt = 0;; attempt++) {
      let c = this.#idle.pop();
      if (c === undefined) {
        c = new Connection(await Deno.connect({ hostname: this.hostname, port: this.port }));
        this.#all.push(c);
      }
      try {
        const status = await c.send(request);
        this.#idle.push(c);
        return status;
      } catch (err) {
        c.conn.close();
        // As Go's transport: a request the server never began to answer goes again, once.
        if (!(err instanceof ClosedIdle) || attempt > 0) throw err;
        this.resent++;
      }
    }
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.#all) {
      try {
        c.conn.close();
      } catch { /* already closed */ }
    }
  }
}

/** What an open-loop run measured: per-request latency and the sender's lag, sorted, ms. */
export interface OpenLoopResult {
  /** Send to answer of every request answered, ascending. */
  readonly latency: number[];
  /** How late each request went out against its schedule, ascending. */
  readonly lag: number[];
  /** Requests not answered 200, by status or error. */
  readonly failed: Map<string, number>;
}

/**
 * Sends `requests` (round robin) at a fixed `rate` per second for `seconds` on `pool`: an open
 * loop, so a slow answer does not delay the next request (a closed loop's latency is its
 * requests in flight divided by its throughput, Little's law, not what one request waits).
 * Resolves once every request is answered.
 *
 * @example
 * ```ts
 * const r = await openLoop(pool, [postRequest("/audit", body)], 200, 10);
 * console.log(r.latency[Math.floor(r.latency.length * 0.99)]);
 * ```
 */
export async function openLoop(
  pool: Pool,
  requests: readonly Uint8Array[],
  rate: number,
  seconds: number,
): Promise<OpenLoopResult> {
  const total = Math.max(1, Math.floor(rate * seconds));
  const latency: number[] = [];
  const lag: number[] = [];
  const failed = new Map<string, number>();
  const count = (why: string) => failed.set(why, (failed.get(why) ?? 0) + 1);
  const answers: Promise<void>[] = [];
  const start = performance.now() + 20;
  for (let k = 0; k < total; k++) {
    const due = start + (k * 1000) / rate;
    const wait = due - performance.now();
    // Timers have millisecond granularity: wait only for whole milliseconds and send what is
    // due at once, so one late timer never shifts the rest of the schedule.
    if (wait >= 1) await new Promise((r) => setTimeout(r, Math.floor(wait)));
    const sentAt = performance.now();
    lag.push(Math.max(0, sentAt - due));
    answers.push(
      pool.send(requests[k % requests.length]).then(
        (status) => {
          latency.push(performance.now() - sentAt);
          if (status !== 200) count(`HTTP ${status}`);
        },
        (err) => void count(String(err)),
      ),
    );
  }
  await Promise.all(answers);
  latency.sort((a, b) => a - b);
  lag.sort((a, b) => a - b);
  return { latency, lag, failed };
}
