/**
 * The acknowledgement latch a source hands along with each chunk.
 *
 * Every branch that must confirm a chunk takes a hold; each hold ends with
 * {@linkcode Ack.release} (done) or {@linkcode Ack.fail} (a `blocking-strict` sink failed).
 * The source learns the outcome from {@linkcode Ack.settled}: the webhook source answers
 * then, the tail source advances its checkpoint then.
 *
 * @module
 */

/** Outcome of a chunk: `null` when every hold was released, else the first failure. */
export type AckOutcome = Error | null;

/**
 * A countdown latch with failure. It starts with one hold, owned by whoever dispatches the
 * chunk, so that it cannot settle while branches are still being handed the chunk.
 *
 * @example
 * ```ts
 * const ack = new Ack();
 * ack.hold(2);            // two blocking branches
 * ack.release();          // the dispatcher is done handing out
 * ack.release(); ack.release();
 * const outcome = await ack.settled; // null
 * ```
 */
export class Ack {
  #holds = 1;
  #failure: Error | null = null;
  #resolve!: (outcome: AckOutcome) => void;
  /** Resolves once every hold has ended; never rejects. */
  readonly settled: Promise<AckOutcome>;

  constructor() {
    this.settled = new Promise((resolve) => this.#resolve = resolve);
  }

  /** Adds `n` holds. */
  hold(n = 1): void {
    if (this.#holds <= 0) throw new Error("Ack.hold after the ack settled");
    this.#holds += n;
  }

  /** Ends one hold successfully. */
  release(): void {
    if (--this.#holds === 0) this.#resolve(this.#failure);
  }

  /** Ends one hold with a failure; the first failure is the outcome. */
  fail(err: Error): void {
    this.#failure ??= err;
    this.release();
  }

  /** Whether every hold has ended. */
  get done(): boolean {
    return this.#holds <= 0;
  }
}

/**
 * An ack nobody waits for: branches in `batch` mode and internal hand-offs use it so that
 * stages never need to test for a missing ack.
 *
 * @example
 * ```ts
 * NO_ACK.release(); // does nothing
 * ```
 */
export const NO_ACK: Ack = new (class extends Ack {
  override hold(): void {}
  override release(): void {}
  override fail(): void {}
})();
