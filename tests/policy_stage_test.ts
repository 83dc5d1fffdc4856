import { assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { Branch } from "../pipeline/branch.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { FanOut } from "../pipeline/stages/fanout.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { type CompiledPolicy, compilePolicy, parsePolicy } from "../policy/mod.ts";
import type { Sink } from "../backends/sink.ts";

const policy = (level: string): CompiledPolicy =>
  compilePolicy(
    parsePolicy(`apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: ${level}\n`, "p.yaml")
      .policy,
  );

Deno.test("policy stage: each distinct policy is evaluated once per event, however many sinks share it", async () => {
  const p1 = policy("Metadata");
  const p2 = policy("None");
  const levels = { None: 0, Metadata: 0, Request: 0, RequestResponse: 0 };
  const written = new Map<string, Envelope[]>();
  const branch = (name: string, p: CompiledPolicy) => {
    const sink: Sink = {
      write(items) {
        written.set(name, [...(written.get(name) ?? []), ...items]);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    return new Branch(
      {
        name,
        mode: "blocking",
        policy: p,
        batch: {
          bufferSize: 10,
          maxSize: 1,
          maxWait: 0,
          throttle: { enabled: false, qps: 1, burst: 1 },
        },
        truncate: { enabled: false, maxEventSize: 1, maxBatchSize: 1 },
      },
      sink,
      { stats: new SinkStats(name), levels, log: silentLogger, clock: systemClock },
    );
  };
  const fanout = new FanOut(
    [branch("a", p1), branch("b", p2), branch("c", p1), branch("d", p2)],
    silentLogger,
  );
  const n = 50;
  for (let i = 0; i < n; i++) {
    await fanout.dispatch({ items: [testEnvelope(`e${i}`)], ack: new Ack() });
  }
  await fanout.close();
  // Two policies, n events: 2n evaluations, counted as kube-apiserver's level metric.
  assertEquals(levels, { None: n, Metadata: n, Request: 0, RequestResponse: 0 });
  assertEquals(written.get("a")?.length, n);
  assertEquals(written.get("c")?.length, n);
  assertEquals(written.get("b"), undefined);
});
