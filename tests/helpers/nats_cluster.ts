/**
 * Test harness: a JetStream cluster of `nats-server` processes on loopback, each with its
 * own config file, store and monitoring port in one temp folder, routed to each other. A
 * member can be killed (SIGKILL: a crash, nothing flushed) and started again on the same
 * ports and store, as a restarted machine would be.
 *
 * @module
 */
import { PROGRAMS, requireProgram } from "./external.ts";
import { freePort } from "./nats.ts";
import { waitFor } from "./wait.ts";

/**
 * One member of a {@linkcode NatsCluster}.
 *
 * @example
 * ```ts
 * await cluster.members[0].kill();
 * await cluster.members[0].start();
 * ```
 */
export interface ClusterMember {
  /** Its `server_name`, as JetStream names stream and meta leaders. */
  readonly name: string;
  /** `nats://127.0.0.1:<port>` for clients. */
  readonly url: string;
  /** The HTTP monitoring port (`/jsz`, `/healthz`). */
  readonly monitorPort: number;
  /** Whether its process runs. */
  readonly running: boolean;
  /** Kills it with `signal` (default SIGKILL) and waits for it to exit. */
  kill(signal?: Deno.Signal): Promise<void>;
  /** Starts it again (same config, ports and store); resolves once it takes clients. */
  start(): Promise<void>;
  /** The JSON of a monitoring endpoint (`/jsz`, `/connz`), or null when it does not answer. */
  monitor<T = Record<string, unknown>>(path: string): Promise<T | null>;
  /** The names of the clients connected to it (`/connz`). */
  clients(): Promise<string[]>;
}

/**
 * A running cluster.
 *
 * @example
 * ```ts
 * const cluster = await startNatsCluster(3);
 * try { await use(cluster.urls); } finally { await cluster.stop(); }
 * ```
 */
export interface NatsCluster {
  readonly members: readonly ClusterMember[];
  /** Every member's client URL: what a daemon lists in `servers`. */
  readonly urls: readonly string[];
  /** The member named `name`. */
  member(name: string): ClusterMember;
  /** Waits until every running member knows the JetStream meta leader (the cluster can create streams). */
  ready(timeoutMs?: number): Promise<void>;
  /** Kills every member and removes the folder. */
  stop(): Promise<void>;
}

/** What `/jsz` says about the JetStream meta group (the part we read). */
interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

/**
 * Starts `size` clustered JetStream servers (`n1`…) on free loopback ports and waits until
 * they have elected a meta leader; rejects with the tail of a member's log when one does
 * not start.
 *
 * @example
 * ```ts
 * const cluster = await startNatsCluster(3);
 * const nc = await connect({ servers: [...cluster.urls] });
 * ```
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  requireProgram("nats-server");
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-nats-cluster-" });
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    port: freePort(),
    routePort: freePort(),
    monitorPort: freePort(),
  }));
  const members = specs.map((spec) => {
    const home = `${dir}/${spec.name}`;
    const routes = specs.filter((o) => o !== spec).map((o) =>
      `nats-route://127.0.0.1:${o.routePort}`
    );
    Deno.mkdirSync(home);
    Deno.writeTextFileSync(
      `${home}/server.conf`,
      `server_name: ${spec.name}
listen: 127.0.0.1:${spec.port}
http: 127.0.0.1:${spec.monitorPort}
log_file: "${home}/server.log"
jetstream {
  store_dir: "${home}/store"
}
cluster {
  name: auditpipe-test
  listen: 127.0.0.1:${spec.routePort}
  routes: [${routes.join(", ")}]
}
`,
    );
    return new Member(spec.name, spec.port, spec.monitorPort, home);
  });
  const cluster: NatsCluster = {
    members,
    urls: members.map((m) => m.url),
    member(name) {
      const m = members.find((x) => x.name === name);
      if (!m) throw new Error(`no cluster member ${name}`);
      return m;
    },
    async ready(timeoutMs = 30_000) {
      let seen = "";
      await waitFor("every running NATS server to know the JetStream meta leader", async () => {
        const states = await Promise.all(
          members.filter((m) => m.running).map((m) => m.monitor<Jsz>("/jsz")),
        );
        seen = JSON.stringify(states.map((s) => s?.meta_cluster ?? null));
        return states.every((s) => s?.meta_cluster?.leader);
      }, { timeoutMs, intervalMs: 100, detail: () => `meta groups seen: ${seen}` });
    },
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await Promise.all(members.map((m) => m.start()));
    await cluster.ready();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

class Member implements ClusterMember {
  readonly url: string;
  #child: Deno.ChildProcess | null = null;
  #exited: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly port: number,
    readonly monitorPort: number,
    readonly home: string,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const child = new Deno.Command(PROGRAMS["nats-server"].command(), {
      args: ["-c", `${this.home}/server.conf`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    let gone = false;
    this.#exited = child.status.then(() => gone = true);
    try {
      await waitFor(`nats-server ${this.name} to take clients on ${this.port}`, async () => {
        if (gone) throw new Error("it exited");
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
          return true;
        } catch {
          return false;
        }
      }, { timeoutMs: 15_000, intervalMs: 25 });
    } catch (err) {
      await this.kill();
      const log = await Deno.readTextFile(`${this.home}/server.log`).catch(() => "");
      throw new Error(`nats-server ${this.name}: ${(err as Error).message}: ${log.slice(-2000)}`);
    }
  }

  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    await this.#exited;
    this.#child = null;
  }

  async monitor<T = Record<string, unknown>>(path: string): Promise<T | null> {
    if (!this.running) return null;
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`);
      return await res.json() as T;
    } catch {
      return null;
    }
  }

  async clients(): Promise<string[]> {
    const connz = await this.monitor<{ connections?: { name?: string }[] }>("/connz?limit=1024");
    return (connz?.connections ?? []).map((c) => c.name ?? "");
  }
}
