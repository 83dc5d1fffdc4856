/**
 * A local HTTP receiver standing in for a SIEM collector: records every EventList posted
 * to it and answers with whatever status the test chooses.
 *
 * @module
 */

/**
 * A kubeconfig whose server is `url`, with no credentials: what a webhook sink needs to post
 * to a local receiver.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile(`${dir}/siem.kubeconfig`, kubeconfigFor("http://127.0.0.1:8080/"));
 * ```
 */
export function kubeconfigFor(url: string): string {
  return `apiVersion: v1\nkind: Config\nclusters:\n- name: r\n  cluster:\n    server: ${url}\n` +
    `contexts:\n- name: r\n  context: {cluster: r, user: u}\ncurrent-context: r\n` +
    `users:\n- name: u\n  user: {}\n`;
}

/** A running receiver. */
export interface Receiver {
  readonly url: string;
  /** auditIDs received with a 2xx answer, in arrival order. */
  readonly received: string[];
  /** Number of requests seen. */
  requests: number;
  /** Status for the next request; default 200. */
  respond: (n: number) => number | Promise<number>;
  /** A kubeconfig pointing at this receiver. */
  kubeconfig(): string;
  /** Makes every request wait unanswered until the returned function is called (then 200). */
  stall(): () => void;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1, on `port` or an ephemeral one. */
export function startReceiver(port = 0): Promise<Receiver> {
  return new Promise((resolve) => {
    const r: Receiver = {
      url: "",
      received: [],
      requests: 0,
      respond: () => 200,
      kubeconfig: () => kubeconfigFor(r.url),
      close: () => server.shutdown(),
      stall() {
        let release!: () => void;
        const answer = new Promise<number>((res) => release = () => res(200));
        r.respond = () => answer;
        return release;
      },
    };
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: ({ port }) => {
        (r as { url: string }).url = `http://127.0.0.1:${port}/ingest`;
        resolve(r);
      },
    }, async (req) => {
      const n = ++r.requests;
      const body = await req.json();
      const status = await r.respond(n);
      if (status >= 200 && status < 300) {
        for (const it of body.items) r.received.push(it.auditID);
      }
      return new Response(JSON.stringify({}), { status });
    });
  });
}
