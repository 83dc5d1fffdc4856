/**
 * Many realistic, numbered audit events cheaply, for load and crash tests: log lines and
 * EventList bodies of a busy cluster's events with unique auditIDs.
 *
 * @module
 */
import { clusterEvent } from "../data/cluster.ts";
import { Rand } from "../data/rand.ts";

const PREFIX = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';

/**
 * Lines of a busy cluster's audit log, numbered: a pool of generated events (about 1 KB at
 * `Metadata`, tests/data/cluster.ts) repeats with each copy's auditID made unique by its
 * number, so 200,000 of them cost a string copy each instead of a generator run.
 *
 * @example
 * ```ts
 * const events = new ClusterEvents(14);
 * await fetch(url, { method: "POST", body: events.list(0, 400) }); // events 0..399
 * events.id(7); // the auditID of event 7
 * ```
 */
export class ClusterEvents {
  readonly #pool: { head: string; id: string; tail: string }[] = [];

  constructor(seed: number, size = 4000) {
    const r = new Rand(seed);
    let now = Date.UTC(2024, 4, 14, 9);
    for (let i = 0; i < size; i++) {
      const { line } = clusterEvent(r, now += r.range(0, 3), false);
      const m = /"auditID":"([0-9a-f-]{36})"/.exec(line)!;
      const at = m.index + '"auditID":"'.length;
      this.#pool.push({ head: line.slice(0, at), id: m[1], tail: line.slice(at + 36) });
    }
  }

  /** The auditID of event `n`: its pool line's UUID with the last 12 digits replaced by `n`. */
  id(n: number): string {
    return this.#pool[n % this.#pool.length].id.slice(0, 24) + n.toString(16).padStart(12, "0");
  }

  /** Event `n` as a log line (no line end). */
  line(n: number): string {
    const p = this.#pool[n % this.#pool.length];
    return p.head + this.id(n) + p.tail;
  }

  /** Events `from` .. `from + count - 1` as an EventList body, items as Go writes them. */
  list(from: number, count: number): string {
    const items: string[] = [];
    for (let n = from; n < from + count; n++) items.push("{" + this.line(n).slice(PREFIX.length));
    return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
      items.join(",")
    }]}`;
  }
}
