/**
 * The generated test corpus keeps the shapes that real audit logs gave the suite: every stage
 * of kube-apiserver's own log with its quirks, v1beta1 events, impersonation and failures,
 * rule fixtures with bodies and sorted keys, AKS envelopes, a BOM, pretty-printed events and
 * non-ASCII text. And it is the same on every run.
 */
import assert from "node:assert/strict";
import { apiserverLog } from "./data/apiserver_log.ts";
import { AUDIT_LOG_LINES, auditLogLines, corpusFiles, ruleFixtureEvents } from "./data/corpus.ts";
import { aksSamples, BOM, kubectlSamples, legacyLog } from "./data/samples.ts";

type Obj = Record<string, unknown>;
const parse = (text: string): Obj[] =>
  text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));

Deno.test("corpus: the same seed gives the same bytes, another seed other ones", () => {
  assert.deepEqual(apiserverLog({ events: 200 }), apiserverLog({ events: 200 }));
  assert.notDeepEqual(apiserverLog({ events: 200, seed: 2 }), apiserverLog({ events: 200 }));
  assert.deepEqual(corpusFiles(), corpusFiles());
});

Deno.test("corpus: the audit.log has every stage, open watches, unsorted lines and Go's escapes", () => {
  const lines = auditLogLines();
  assert.equal(lines.length, AUDIT_LOG_LINES);
  const events = lines.map((l) => JSON.parse(l) as Obj);
  assert.ok(events.every((e) => e.apiVersion === "audit.k8s.io/v1" && e.level === "Metadata"));
  const stages = new Map<string, Set<string>>();
  for (const e of events) {
    const id = String(e.auditID);
    stages.set(id, (stages.get(id) ?? new Set()).add(String(e.stage)));
  }
  const all = new Set(events.map((e) => e.stage));
  assert.deepEqual([...all].sort(), ["RequestReceived", "ResponseComplete", "ResponseStarted"]);
  assert.ok([...stages.values()].some((s) => s.size >= 2), "stages of one request share an ID");
  assert.ok(
    [...stages.values()].some((s) => s.has("ResponseStarted") && !s.has("ResponseComplete")),
    "a watch still open at the end",
  );
  let inversions = 0;
  for (let i = 1; i < events.length; i++) {
    if (String(events[i].stageTimestamp) < String(events[i - 1].stageTimestamp)) inversions++;
  }
  assert.ok(inversions > 0, "lines are not sorted by stageTimestamp");
  assert.ok(lines.some((l) => l.includes("\\u0026")), "& escaped as Go does");
  assert.ok(lines.some((l) => /µs/.test(l)), "non-ASCII latency annotations");
  const codes = new Set(events.map((e) => (e.responseStatus as Obj | undefined)?.code));
  for (const c of [undefined, 200, 201, 409, 500]) assert.ok(codes.has(c), `code ${c}`);
  assert.ok(events.some((e) => e.objectRef === undefined), "non-resource requests");
});

Deno.test("corpus: v1beta1 events carry their own timestamps, impersonation, 403 and 404", () => {
  const old = parse(legacyLog());
  assert.ok(old.every((e) => e.apiVersion === "audit.k8s.io/v1beta1"));
  assert.ok(old.every((e) => "timestamp" in e && "metadata" in e));
  assert.ok(old.every((e) => !("requestReceivedTimestamp" in e) && !("userAgent" in e)));
  assert.ok(old.some((e) => e.impersonatedUser !== undefined));
  const codes = new Set(old.map((e) => (e.responseStatus as Obj | undefined)?.code));
  for (const c of [undefined, 200, 201, 403, 404]) assert.ok(codes.has(c), `code ${c}`);
  const relabelled = parse(legacyLog({ relabelled: true }));
  assert.ok(relabelled.length > 10);
  assert.ok(relabelled.every((e) => e.apiVersion === "audit.k8s.io/v1" && !e.stageTimestamp));
});

Deno.test("corpus: rule fixtures have bodies, sorted keys without apiVersion, and v1beta1 ones", () => {
  const events = ruleFixtureEvents();
  assert.ok(events.length >= 40);
  const sorted = events.filter((e) => {
    const keys = Object.keys(e);
    return !("apiVersion" in e) && keys.join() === [...keys].sort().join();
  });
  assert.ok(sorted.length > events.length / 2, `${sorted.length} sorted`);
  assert.ok(events.some((e) => e.apiVersion === "audit.k8s.io/v1beta1"));
  assert.ok(events.some((e) => e.apiVersion === "audit.k8s.io/v1"));
  assert.ok(events.some((e) => e.requestObject && e.responseObject));
  assert.ok(events.some((e) => e.stage === "ResponseStarted"), "exec and attach");
  const levels = new Set(events.map((e) => e.level));
  assert.deepEqual([...levels].sort(), ["Metadata", "Request", "RequestResponse"]);
});

Deno.test("corpus: AKS envelopes hold events as strings; BOMs and pretty-printed documents", () => {
  const [pretty, records, single] = aksSamples().sort((a, b) => a.name.localeCompare(b.name));
  const env = JSON.parse(records.text);
  assert.ok(!records.text.endsWith("\n") && !records.text.includes("\n"));
  assert.ok(env.records.length > 10);
  for (const r of env.records) {
    assert.equal(r.category, "kube-audit");
    assert.ok(r.properties.log.endsWith("\n"));
    assert.equal(JSON.parse(r.properties.log).kind, "Event");
  }
  assert.ok(single.text.startsWith(BOM + "{\n"));
  assert.ok(pretty.text.startsWith(BOM + "{\n") && pretty.text.endsWith("} "));
  assert.equal(JSON.parse(pretty.text.slice(1)).level, "RequestResponse");
  const [levels, , lease] = kubectlSamples();
  assert.deepEqual(parse(levels.text).map((e) => e.level), [
    "Metadata",
    "Request",
    "RequestResponse",
  ]);
  assert.ok(lease.text.includes("\n  ") && lease.text.endsWith("}\n"));
});
