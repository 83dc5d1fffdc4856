/**
 * What a sink branch holds, measured where the events are rather than derived from what came
 * in and went out: the chunks and batches between its stages, and the events stateful stages
 * keep inside (a batcher's pending batch). With it, `received = written + dropped + held` is a
 * check that fails when a stage loses events without counting them, not an identity that
 * holds by construction.
 *
 * @module
 */

/** Anything that carries events through a branch: a chunk or a batch. */
export interface Container {
  readonly items: readonly unknown[];
}

/**
 * The containers alive in one branch, and probes into stages that keep events of their own.
 *
 * A stage calls {@linkcode Ledger.take} on what it receives and {@linkcode Ledger.put} on what
 * it emits; a container passed on unchanged is neither (it stays where it was counted). The
 * sink writer takes a batch once it has counted it written or dropped.
 *
 * @example
 * ```ts
 * const ledger = new Ledger();
 * ledger.put(chunk);          // 3 events between two stages
 * ledger.take(chunk);         // a stage received it...
 * ledger.put(smaller);        // ...and emitted 2 of them
 * ledger.held;                // 2: the third must have been counted as dropped
 * ```
 */
export class Ledger {
  readonly #live = new Map<object, number>();
  #liveEvents = 0;
  readonly #probes = new Set<() => number>();

  /** Counts the events of `c` as held until it is taken. Putting it again changes nothing. */
  put(c: Container): void {
    if (this.#live.has(c)) return;
    this.#live.set(c, c.items.length);
    this.#liveEvents += c.items.length;
  }

  /** Stops counting `c` (received by a stage, or written). Unknown containers are ignored. */
  take(c: Container): void {
    const n = this.#live.get(c);
    if (n === undefined) return;
    this.#live.delete(c);
    this.#liveEvents -= n;
  }

  /**
   * Adds `count`, read whenever the ledger is read, for a stage that keeps events outside
   * any container; returns the function that removes it.
   */
  probe(count: () => number): () => void {
    this.#probes.add(count);
    return () => this.#probes.delete(count);
  }

  /** Events held now: in live containers and in probed stages. */
  get held(): number {
    let n = this.#liveEvents;
    for (const p of this.#probes) n += p();
    return n;
  }

  /**
   * Forgets everything and returns what was held: for a branch abandoned at the shutdown
   * deadline, whose events are then counted as dropped.
   */
  clear(): number {
    const n = this.held;
    this.#live.clear();
    this.#liveEvents = 0;
    this.#probes.clear();
    return n;
  }
}

/**
 * A ledger that counts nothing, for stages used outside a branch.
 *
 * @example
 * ```ts
 * const ledger = deps.ledger ?? NO_LEDGER;
 * ```
 */
export const NO_LEDGER: Ledger = new (class extends Ledger {
  override put(): void {}
  override probe(): () => void {
    return () => {};
  }
})();

/**
 * `transformer` with its receipts taken from and its emissions put into `ledger`: for stages
 * that turn each container they receive into the ones they emit, holding nothing between
 * calls.
 *
 * @example
 * ```ts
 * new TransformStream(ledgered(ledger, { transform(chunk, c) { c.enqueue(chunk); } }));
 * ```
 */
export function ledgered<I extends Container, O extends Container>(
  ledger: Ledger,
  transformer: Transformer<I, O> & {
    transform: (chunk: I, controller: TransformStreamDefaultController<O>) => void;
  },
): Transformer<I, O> {
  if (ledger === NO_LEDGER) return transformer;
  let proxy: TransformStreamDefaultController<O> | null = null;
  const wrap = (c: TransformStreamDefaultController<O>) =>
    proxy ??= {
      get desiredSize() {
        return c.desiredSize;
      },
      enqueue(out?: O) {
        if (out !== undefined) ledger.put(out);
        c.enqueue(out);
      },
      error: (reason?: unknown) => c.error(reason),
      terminate: () => c.terminate(),
    };
  return {
    ...transformer,
    transform(chunk, controller) {
      ledger.take(chunk);
      transformer.transform(chunk, wrap(controller));
    },
  };
}
