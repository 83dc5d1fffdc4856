/**
 * The few assertions the tests use, on top of `node:assert/strict`.
 *
 * @module
 */
import assertStrict from "node:assert/strict";

/** Deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  assertStrict.deepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assert(value: unknown, msg?: string): asserts value {
  assertStrict.ok(value, msg);
}

/** That `fn` rejects with an error whose message matches `pattern`. */
export async function assertRejects(fn: () => Promise<unknown>, pattern?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (pattern) assertStrict.match((err as Error).message, pattern);
    return err as Error;
  }
  throw new assertStrict.AssertionError({ message: "expected a rejection" });
}
