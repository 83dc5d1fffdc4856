import assert from "node:assert/strict";
import { Ack, NO_ACK } from "../pipeline/core/ack.ts";
import type { Batch, Chunk, Envelope } from "../pipeline/core/envelope.ts";
import {
  asEvent,
  type Event,
  eventProblem,
  type Level,
  type Stage,
} from "../pipeline/core/event.ts";
import { encodeEvent, jsonSize } from "../pipeline/core/encode.ts";
import { createLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import type { TruncateConfig } from "../pipeline/config/schema.ts";
import {
  TRUNCATED_ANNOTATION,
  truncatedEvent,
  truncateEnvelope,
  truncateEvents,
} from "../pipeline/stages/truncate.ts";
import { splitBatches, splitItems } from "../pipeline/stages/split.ts";
import { ruleFixtureEvents } from "./data/corpus.ts";

/** Go's defaultConfig in truncate_test.go. */
const GO_CONFIG: TruncateConfig = {
  enabled: true,
  maxEventSize: 100 * 1024,
  maxBatchSize: 4 * 1024 * 1024,
};

/** Go's `&auditinternal.Event{}`: every string empty, user {}, timestamps null. */
function goEmptyEvent(over: Partial<Record<keyof Event, unknown>> = {}): Event {
  return {
    level: "" as Level,
    auditID: "",
    stage: "" as Stage,
    requestURI: "",
    verb: "",
    user: {},
    requestReceivedTimestamp: null,
    stageTimestamp: null,
    ...over,
  } as Event;
}

function env(event: Event): Envelope {
  return { event };
}

function harness() {
  const stats = new SinkStats("test");
  const lines: string[] = [];
  const log = createLogger("debug", (l) => lines.push(l));
  return { stats, lines, log };
}

async function collect<T>(readable: ReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of readable) out.push(x);
  return out;
}

async function runTruncate(
  cfg: TruncateConfig,
  chunks: Chunk[],
  h = harness(),
  size?: (e: Envelope) => number,
): Promise<Chunk[]> {
  return await collect(
    ReadableStream.from(chunks).pipeThrough(
      truncateEvents(cfg, { stats: h.stats, log: h.log, size }),
    ),
  );
}

function bigString(n: number): string {
  return "A".repeat(n);
}

Deno.test("an empty Go event measures 173 bytes and passes untouched", async () => {
  const e = env(goEmptyEvent());
  assert.equal(jsonSize(e), 173);
  const chunk: Chunk = { items: [e], ack: new Ack() };
  const out = await runTruncate(GO_CONFIG, [chunk]);
  assert.equal(out.length, 1);
  assert.equal(out[0], chunk, "an unchanged chunk is forwarded as the same object");
  assert.equal(out[0].items[0], e);
  assert.equal(chunk.ack.done, false, "a forwarded chunk keeps its hold");
});

Deno.test("a Request event with a too large body loses both objects and is annotated", async () => {
  const original = goEmptyEvent({
    level: "Request",
    requestObject: bigString(GO_CONFIG.maxEventSize),
    responseObject: { kind: "Status" },
    annotations: { "z.example/last": "1", "a.example/first": "2" },
  });
  const frozenBefore = JSON.stringify(original);
  const e: Envelope = { event: original };
  const h = harness();
  const chunk: Chunk = { items: [e], ack: new Ack() };
  const out = await runTruncate(GO_CONFIG, [chunk], h);

  assert.equal(out.length, 1);
  assert.notEqual(out[0], chunk, "a changed chunk is a new object");
  assert.equal(out[0].ack, chunk.ack);
  const got = out[0].items[0];
  assert.notEqual(got, e);
  assert.notEqual(got.event, original);
  assert.equal(got.raw?.length, jsonSize(got) - 1, "only the re-measure cached bytes");
  assert.equal(got.event.requestObject, undefined);
  assert.equal(got.event.responseObject, undefined);
  assert.ok(!("requestObject" in got.event));
  assert.deepEqual(got.event.annotations, {
    "a.example/first": "2",
    [TRUNCATED_ANNOTATION]: "true",
    "z.example/last": "1",
  });
  assert.deepEqual(Object.keys(got.event.annotations!), [
    "a.example/first",
    "audit.k8s.io/truncated",
    "z.example/last",
  ]);
  assert.ok(jsonSize(got) <= GO_CONFIG.maxEventSize);
  assert.equal(JSON.stringify(original), frozenBefore, "the shared event is not mutated");
  assert.equal(h.stats.dropped.too_large, 0);
  assert.equal(chunk.ack.done, false);
});

Deno.test("a level-less event with a too large annotation is dropped, counted and logged", async () => {
  const h = harness();
  const chunk: Chunk = {
    items: [env(goEmptyEvent({ annotations: { key: bigString(GO_CONFIG.maxEventSize) } }))],
    ack: new Ack(),
  };
  const out = await runTruncate(GO_CONFIG, [chunk], h);
  assert.equal(out.length, 0, "a chunk with nothing left is not forwarded");
  assert.equal(h.stats.dropped.too_large, 1);
  assert.equal(chunk.ack.done, true, "the branch's hold ends with the drop");
  assert.equal(await chunk.ack.settled, null, "a size drop is not a failure");
  assert.equal(h.lines.length, 1);
  const line = JSON.parse(h.lines[0]);
  assert.equal(line.level, "warn");
  assert.match(line.msg, /too large even after truncating/);
  assert.equal(line.count, 1);
});

Deno.test("a bodiless RequestResponse event just over the limit grows with the annotation and is dropped", () => {
  const base = goEmptyEvent({ level: "RequestResponse", annotations: { key: "" } });
  const pad = GO_CONFIG.maxEventSize + 1 - jsonSize(env(base));
  const e = env({ ...base, annotations: { key: bigString(pad) } });
  assert.equal(jsonSize(e), GO_CONFIG.maxEventSize + 1);
  assert.equal(truncateEnvelope(e, GO_CONFIG.maxEventSize), null);
});

Deno.test("an event exactly at maxEventSize is kept: only larger ones are truncated", () => {
  const base = goEmptyEvent({ level: "Metadata", annotations: { key: "" } });
  const pad = GO_CONFIG.maxEventSize - jsonSize(env(base));
  const e = env({ ...base, annotations: { key: bigString(pad) } });
  assert.equal(jsonSize(e), GO_CONFIG.maxEventSize);
  assert.equal(truncateEnvelope(e, GO_CONFIG.maxEventSize), e);
});

Deno.test("a chunk with some events dropped goes on with the rest and keeps its hold", async () => {
  const h = harness();
  const small = env(goEmptyEvent({ auditID: "small" }));
  const big = env(goEmptyEvent({ auditID: "big", annotations: { k: bigString(200_000) } }));
  const body = env(
    goEmptyEvent({ auditID: "body", level: "Request", requestObject: "x".repeat(200_000) }),
  );
  const ack = new Ack();
  const out = await runTruncate(GO_CONFIG, [{ items: [small, big, body], ack }], h);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].items.map((e) => e.event.auditID), ["small", "body"]);
  assert.equal(out[0].items[0], small);
  assert.equal(out[0].items[1].event.annotations?.[TRUNCATED_ANNOTATION], "true");
  assert.equal(h.stats.dropped.too_large, 1);
  assert.equal(ack.done, false);
});

Deno.test("an event whose size cannot be measured is dropped, not thrown", async () => {
  const h = harness();
  const ack = new Ack();
  const out = await runTruncate(GO_CONFIG, [{ items: [env(goEmptyEvent())], ack }], h, () => {
    throw new Error("cannot encode");
  });
  assert.equal(out.length, 0);
  assert.equal(h.stats.dropped.too_large, 1);
  assert.equal(ack.done, true);
});

Deno.test("the size function of the sink decides, e.g. a legacy line", async () => {
  const h = harness();
  const e = env(goEmptyEvent({ level: "Request", requestObject: { a: 1 } }));
  // Pretend the sink's line is big while the body is there and small once it is gone.
  const size = (x: Envelope) => x.event.requestObject === undefined ? 10 : 1_000_000;
  const out = await runTruncate(GO_CONFIG, [{ items: [e], ack: NO_ACK }], h, size);
  assert.equal(out[0].items[0].event.annotations?.[TRUNCATED_ANNOTATION], "true");
  assert.equal(out[0].items[0].raw, undefined, "a custom measure does not cache JSON bytes");
});

Deno.test("disabled truncation passes even huge events through", async () => {
  const h = harness();
  const chunk: Chunk = {
    items: [env(goEmptyEvent({ annotations: { key: bigString(300_000) } }))],
    ack: new Ack(),
  };
  const out = await runTruncate({ ...GO_CONFIG, enabled: false }, [chunk], h);
  assert.deepEqual(out, [chunk]);
  assert.equal(h.stats.dropped.too_large, 0);
});

Deno.test("many drops make one log line per second with the count, flushed at close", async () => {
  const h = harness();
  const chunks: Chunk[] = [];
  for (let i = 0; i < 5; i++) {
    chunks.push({
      items: [env(goEmptyEvent({ annotations: { k: bigString(200_000) } }))],
      ack: NO_ACK,
    });
  }
  await runTruncate(GO_CONFIG, chunks, h);
  assert.equal(h.stats.dropped.too_large, 5);
  assert.equal(h.lines.length, 2, "first drop at once, the other four at close");
  assert.equal(JSON.parse(h.lines[1]).count, 4);
  assert.equal(JSON.parse(h.lines[1]).total, 5);
});

Deno.test("truncated annotations are sorted by UTF-8 bytes like Go's map keys", () => {
  // U+1F600 (4 UTF-8 bytes, F0...) sorts after U+FF5E (EF...) in bytes, before it in UTF-16.
  const e = truncatedEvent(
    goEmptyEvent({ annotations: { "\u{1F600}": "a", "\uFF5E": "b", "B": "c" } }),
  );
  assert.deepEqual(Object.keys(e.annotations!), [
    "B",
    TRUNCATED_ANNOTATION,
    "\uFF5E",
    "\u{1F600}",
  ]);
});

Deno.test("a truncated event encodes as the original minus its objects plus the annotation", () => {
  const original = goEmptyEvent({
    level: "RequestResponse",
    auditID: "x",
    requestObject: { a: 1 },
    responseObject: { b: 2 },
    requestReceivedTimestamp: "2024-01-01T00:00:00.000000Z",
    stageTimestamp: "2024-01-01T00:00:00.000001Z",
  });
  const text = encodeEvent(truncatedEvent(original));
  assert.equal(
    text,
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"x",' +
      '"stage":"","requestURI":"","verb":"","user":{},' +
      '"requestReceivedTimestamp":"2024-01-01T00:00:00.000000Z",' +
      '"stageTimestamp":"2024-01-01T00:00:00.000001Z",' +
      '"annotations":{"audit.k8s.io/truncated":"true"}}',
  );
});

/**
 * Events of the generated rule-test fixtures (request and response objects, sorted keys, some
 * `audit.k8s.io/v1beta1`); the apiVersion is dropped so that they measure as v1 events.
 */
function fixtureEvents(): Envelope[] {
  return ruleFixtureEvents().map((doc) => {
    const { apiVersion: _v, ...rest } = doc;
    assert.equal(eventProblem(rest), null, String(rest.auditID));
    return { event: asEvent(rest) };
  });
}

Deno.test("rule-fixture events: what fits passes, bodies are stripped, the rest is dropped", async () => {
  const events = fixtureEvents();
  assert.ok(events.length >= 40);
  const maxEventSize = 900;
  const h = harness();
  const before = events.map((e) => JSON.stringify(e.event));
  // What kube-apiserver would do with each, from sizes alone.
  const expected: ("kept" | "stripped" | "dropped")[] = events.map((e) => {
    if (jsonSize({ event: e.event }) <= maxEventSize) return "kept";
    if (e.event.level !== "Request" && e.event.level !== "RequestResponse") return "dropped";
    const { requestObject: _q, responseObject: _r, ...rest } = e.event;
    const stripped = {
      ...rest,
      annotations: { ...rest.annotations, [TRUNCATED_ANNOTATION]: "true" },
    };
    return jsonSize({ event: stripped }) <= maxEventSize ? "stripped" : "dropped";
  });
  assert.ok(expected.includes("kept") && expected.includes("stripped"));

  const out = await runTruncate(
    { enabled: true, maxEventSize, maxBatchSize: 10 * maxEventSize },
    [{ items: events, ack: NO_ACK }],
    h,
  );
  const kept = out.flatMap((c) => c.items);
  const survivors = events.filter((_, i) => expected[i] !== "dropped");
  assert.equal(kept.length, survivors.length);
  assert.equal(h.stats.dropped.too_large, expected.filter((x) => x === "dropped").length);
  kept.forEach((e, i) => {
    const from = survivors[i];
    const what = expected[events.indexOf(from)];
    assert.ok(jsonSize(e) <= maxEventSize);
    if (what === "kept") assert.equal(e, from);
    else {
      assert.equal(e.event.auditID, from.event.auditID);
      assert.equal(e.event.annotations?.[TRUNCATED_ANNOTATION], "true");
      assert.ok(!("requestObject" in e.event) && !("responseObject" in e.event));
    }
  });
  assert.deepEqual(events.map((e) => JSON.stringify(e.event)), before, "inputs unchanged");
});

// --- splitting batches (truncate step 4) ---

async function runSplit(cfg: TruncateConfig, batches: Batch[]): Promise<Batch[]> {
  return await collect(ReadableStream.from(batches).pipeThrough(splitBatches(cfg)));
}

Deno.test("events fitting in one batch are not split", async () => {
  const batch: Batch = { items: [env(goEmptyEvent())], acks: [new Ack()] };
  const out = await runSplit(GO_CONFIG, [batch]);
  assert.deepEqual(out, [batch]);
  assert.equal(out[0], batch);
});

Deno.test("two small events with maxBatchSize 1 become two batches, each holding the ack", async () => {
  const a = new Ack();
  const b = new Ack();
  const items = [
    env(goEmptyEvent({ annotations: { key: bigString(50) } })),
    env(goEmptyEvent({ annotations: { key: bigString(50) } })),
  ];
  const out = await runSplit({ ...GO_CONFIG, maxBatchSize: 1 }, [{ items, acks: [a, b] }]);
  assert.equal(out.length, 2);
  assert.deepEqual(out.map((x) => x.items.length), [1, 1]);
  for (const x of out) assert.deepEqual(x.acks, [a, b]);
  for (const ack of out[0].acks) ack.release();
  assert.equal(a.done, false, "the second part is not written yet");
  assert.equal(b.done, false);
  for (const ack of out[1].acks) ack.release();
  assert.equal(a.done, true);
  assert.equal(b.done, true);
});

Deno.test("batches are cut before the event that would pass maxBatchSize; a huge event goes alone", () => {
  const sizes = new Map<Envelope, number>();
  const mk = (n: number) => {
    const e = env(goEmptyEvent());
    sizes.set(e, n);
    return e;
  };
  const [a, b, c, huge, d] = [mk(400), mk(600), mk(1), mk(5000), mk(999)];
  const groups = splitItems([a, b, c, huge, d], 1000, (e) => sizes.get(e)!);
  assert.deepEqual(groups, [[a, b], [c], [huge], [d]]);
  assert.deepEqual(splitItems([], 1000), []);
});

Deno.test("an empty batch is not forwarded and its acks are released", async () => {
  const ack = new Ack();
  const out = await runSplit(GO_CONFIG, [{ items: [], acks: [ack] }]);
  assert.equal(out.length, 0);
  assert.equal(ack.done, true);
});

Deno.test("disabled truncation does not split", async () => {
  const items = [env(goEmptyEvent()), env(goEmptyEvent())];
  const batch: Batch = { items, acks: [new Ack()] };
  const out = await runSplit({ ...GO_CONFIG, enabled: false, maxBatchSize: 1 }, [batch]);
  assert.deepEqual(out, [batch]);
});
