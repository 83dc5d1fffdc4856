import assert from "node:assert/strict";
import { FakeClock, flushMicrotasks, systemClock } from "../pipeline/core/clock.ts";
import {
  abortableSleep,
  Backoff,
  backoffDelays,
  RetryError,
  withRetry,
} from "../pipeline/core/retry.ts";
import { errorText } from "../pipeline/core/errors.ts";

const fixed = (v: number) => () => v;

Deno.test("backoff grows by 1.5 from the initial delay, as kube-apiserver's webhook", () => {
  assert.deepEqual(
    backoffDelays({ initialBackoff: 10_000, random: fixed(0) }, 4),
    [10_000, 15_000, 22_500, 33_750],
  );
});

Deno.test("backoff jitter stretches each delay by r x 0.2 (r = 0.5 gives x1.1)", () => {
  assert.deepEqual(
    backoffDelays({ initialBackoff: 10_000, random: fixed(0.5) }, 4),
    [11_000, 16_500, 24_750, 37_125],
  );
});

Deno.test("backoff never exceeds maxBackoff, jitter included", () => {
  assert.deepEqual(
    backoffDelays({ initialBackoff: 10_000, maxBackoff: 20_000, random: fixed(0.99) }, 4),
    [11_980, 17_970, 20_000, 20_000],
  );
});

Deno.test("backoff with no cap stays a valid timer delay however many attempts", () => {
  const b = new Backoff({ initialBackoff: 10_000, random: fixed(0) });
  let d = 0;
  for (let i = 0; i < 200; i++) d = b.next();
  assert.equal(d, 2 ** 31 - 1);
});

Deno.test("backoff with factor 2 doubles up to its cap, and reset starts it over", () => {
  const b = new Backoff({ initialBackoff: 500, maxBackoff: 3000, factor: 2, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [
    500,
    1000,
    2000,
    3000,
    3000,
  ]);
  b.reset();
  assert.deepEqual([b.next(), b.next()], [500, 1000]);
});

Deno.test("abortableSleep resolves true after the time and false, without throwing, on abort", async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const whole = abortableSleep(clock, 1000, ac.signal);
  await clock.advance(1000);
  assert.equal(await whole, true);
  const cut = abortableSleep(clock, 1000, ac.signal);
  ac.abort(new Error("stop"));
  assert.equal(await cut, false);
  assert.equal(await abortableSleep(clock, 1000, ac.signal), false);
});

/** Starts withRetry on a FakeClock with an fn that fails `failures` times. */
function scripted(failures: number, opts: { maxAttempts: number; random?: () => number }) {
  const clock = new FakeClock();
  const calls: number[] = [];
  const retries: [number, number][] = [];
  const p = withRetry(async (attempt) => {
    calls.push(attempt);
    await Promise.resolve();
    if (calls.length <= failures) throw new Error(`boom ${attempt}`);
    return "ok";
  }, {
    maxAttempts: opts.maxAttempts,
    initialBackoff: 10_000,
    random: opts.random ?? fixed(0),
    clock,
    onRetry: (attempt, _err, delay) => retries.push([attempt, delay]),
  });
  return { clock, calls, retries, p };
}

Deno.test("withRetry sleeps exactly 10s, 15s, 22.5s, 33.75s between five attempts", async () => {
  const { clock, calls, p } = scripted(4, { maxAttempts: 5 });
  const waits: number[][] = [];
  for (const d of [10_000, 15_000, 22_500, 33_750]) {
    await flushMicrotasks();
    waits.push(clock.pending());
    await clock.advance(d - 1);
    assert.equal(calls.length, waits.length, "no attempt before the delay is over");
    await clock.advance(1);
  }
  assert.deepEqual(waits, [[10_000], [15_000], [22_500], [33_750]]);
  assert.equal(await p, "ok");
  assert.deepEqual(calls, [1, 2, 3, 4, 5]);
});

Deno.test("withRetry with jitter r = 0.1 waits each delay x1.1", async () => {
  const { clock, retries, p } = scripted(4, { maxAttempts: 5, random: fixed(0.5) });
  for (const d of [11_000, 16_500, 24_750, 37_125]) {
    await flushMicrotasks();
    await clock.advance(d);
  }
  assert.equal(await p, "ok");
  assert.deepEqual(retries, [[1, 11_000], [2, 16_500], [3, 24_750], [4, 37_125]]);
});

Deno.test("withRetry rejects after maxAttempts with the count and the last error", async () => {
  const { clock, calls, retries, p } = scripted(Infinity, { maxAttempts: 3 });
  const caught = p.catch((e) => e);
  await flushMicrotasks();
  await clock.advance(10_000);
  await clock.advance(15_000);
  const err = await caught;
  assert.ok(err instanceof RetryError);
  assert.equal(err.attempts, 3);
  assert.equal(err.aborted, false);
  assert.equal(err.message, "gave up after 3 attempts: boom 3");
  assert.equal((err.cause as Error).message, "boom 3");
  assert.deepEqual(calls, [1, 2, 3]);
  assert.equal(retries.length, 2, "no sleep after the last attempt");
  assert.equal(clock.sleeping, 0);
});

Deno.test("withRetry with maxAttempts 1 tries once and does not sleep", async () => {
  const { clock, calls, p } = scripted(Infinity, { maxAttempts: 1 });
  await assert.rejects(p, /gave up after 1 attempt: boom 1/);
  assert.deepEqual(calls, [1]);
  assert.equal(clock.sleeping, 0);
});

Deno.test("withRetry with maxAttempts 0 keeps trying until it succeeds", async () => {
  const { clock, calls, p } = scripted(12, { maxAttempts: 0 });
  for (let i = 0; i < 12; i++) {
    await flushMicrotasks();
    await clock.advance(clock.pending()[0]);
  }
  assert.equal(await p, "ok");
  assert.equal(calls.length, 13);
});

Deno.test("withRetry waits the Retry-After the failure asks for instead of the backoff", async () => {
  const clock = new FakeClock();
  let n = 0;
  const p = withRetry(() => {
    n++;
    return n === 1
      ? Promise.reject(Object.assign(new Error("429"), { wait: 3000 }))
      : Promise.resolve(n);
  }, {
    maxAttempts: 5,
    initialBackoff: 10_000,
    random: fixed(0),
    clock,
    retryAfter: (e) => (e as { wait?: number }).wait,
  });
  await flushMicrotasks();
  assert.deepEqual(clock.pending(), [3000]);
  await clock.advance(3000);
  assert.equal(await p, 2);
});

Deno.test("withRetry uses the backoff when Retry-After is 0, so it cannot spin", async () => {
  const clock = new FakeClock();
  const p = withRetry(() => Promise.reject(new Error("503")), {
    maxAttempts: 2,
    initialBackoff: 10_000,
    random: fixed(0),
    clock,
    retryAfter: () => 0,
  }).catch((e) => e);
  await flushMicrotasks();
  assert.deepEqual(clock.pending(), [10_000]);
  await clock.advance(10_000);
  assert.ok((await p) instanceof RetryError);
});

Deno.test("withRetry caps a Retry-After at maxBackoff", async () => {
  const clock = new FakeClock();
  const delays: number[] = [];
  const p = withRetry(() => Promise.reject(new Error("x")), {
    maxAttempts: 2,
    initialBackoff: 10,
    maxBackoff: 5000,
    clock,
    retryAfter: () => 3_600_000,
    onRetry: (_a, _e, d) => delays.push(d),
  }).catch((e) => e);
  await flushMicrotasks();
  await clock.advance(5000);
  assert.ok((await p) instanceof RetryError);
  assert.deepEqual(delays, [5000]);
});

Deno.test("withRetry rejects promptly when the signal aborts during a backoff sleep", async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const p = withRetry(() => Promise.reject(new Error("down")), {
    maxAttempts: 5,
    initialBackoff: 10_000,
    clock,
    signal: ac.signal,
  }).catch((e) => e);
  await flushMicrotasks();
  assert.equal(clock.sleeping, 1);
  ac.abort(new Error("shutdown"));
  const err = await p;
  assert.ok(err instanceof RetryError);
  assert.equal(err.aborted, true);
  assert.equal(err.attempts, 1);
  assert.match(err.message, /^aborted after 1 attempt: down$/);
});

Deno.test("withRetry does not start an attempt once the signal is aborted", async () => {
  let calls = 0;
  const err = await withRetry(() => {
    calls++;
    return Promise.resolve();
  }, {
    maxAttempts: 5,
    initialBackoff: 10,
    clock: systemClock,
    signal: AbortSignal.abort(new Error("stop")),
  }).catch((e) => e);
  assert.equal(calls, 0);
  assert.ok(err instanceof RetryError && err.aborted);
});

Deno.test("withRetry on the real clock retries after small backoffs", async () => {
  let n = 0;
  const t0 = performance.now();
  const v = await withRetry(() => ++n < 3 ? Promise.reject(new Error("no")) : Promise.resolve(n), {
    maxAttempts: 3,
    initialBackoff: 10,
    clock: systemClock,
  });
  assert.equal(v, 3);
  assert.ok(performance.now() - t0 >= 24, "waited about 10ms + 15ms");
});

Deno.test("errorText includes the cause chain, where fetch says why it failed", () => {
  const e = new TypeError("fetch failed", {
    cause: new Error("client error (Connect): invalid peer certificate: UnknownIssuer"),
  });
  assert.equal(
    errorText(e),
    "fetch failed: client error (Connect): invalid peer certificate: UnknownIssuer",
  );
  assert.equal(errorText("plain"), "plain");
});
