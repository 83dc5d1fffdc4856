/**
 * Counts per name (a user, a resource, a verb) of what a policy did with the events, for the
 * report's top lists, in bounded memory.
 *
 * @module
 */
import { newStats, type RuleStats } from "./report_stats.ts";

/**
 * Distinct names counted one by one; later names go to one shared bucket. Audit logs name a
 * few hundred users, resources and verbs, so the cap only guards against a log of, say,
 * generated usernames making the report's memory grow with the log.
 *
 * @example
 * ```ts
 * const tally = new Tally(TALLY_MAX_NAMES);
 * ```
 */
export const TALLY_MAX_NAMES = 10_000;

/**
 * One name's counts in a ranking; `other` marks the bucket of names past the cap.
 *
 * @example
 * ```ts
 * const e: RankedStats = { name: "alice", events: 1, kept: 1, omittedStage: 0, bytesIn: 900, bytesOut: 900 };
 * ```
 */
export interface RankedStats extends RuleStats {
  readonly name: string;
  readonly other?: true;
}

/**
 * Per-name {@linkcode RuleStats}: at most `maxNames` names, the rest summed as one.
 *
 * @example
 * ```ts
 * const users = new Tally();
 * users.stats("alice").events++;
 * users.top(10); // [{ name: "alice", events: 1, ... }]
 * ```
 */
export class Tally {
  readonly #byName = new Map<string, RuleStats>();
  #other: RuleStats | null = null;

  constructor(readonly maxNames: number = TALLY_MAX_NAMES) {}

  /** The counts to add `name`'s event to: its own, or the shared bucket once full. */
  stats(name: string): RuleStats {
    let s = this.#byName.get(name);
    if (s !== undefined) return s;
    if (this.#byName.size >= this.maxNames) return this.#other ??= newStats();
    s = newStats();
    this.#byName.set(name, s);
    return s;
  }

  /**
   * The `n` largest by bytes written (then bytes read, events, name), the bucket of names past
   * the cap ranked among them as `{name: "(other)", other: true}`.
   */
  top(n: number): RankedStats[] {
    const all: RankedStats[] = [...this.#byName].map(([name, s]) => ({ name, ...s }));
    if (this.#other !== null) all.push({ name: "(other)", other: true, ...this.#other });
    all.sort((a, b) =>
      b.bytesOut - a.bytesOut || b.bytesIn - a.bytesIn || b.events - a.events ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    );
    return all.slice(0, n);
  }
}
