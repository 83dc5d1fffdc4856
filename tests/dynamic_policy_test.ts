/**
 * Dynamic (AuditSink) policies: the conversion to an audit Policy and the enforcement, on
 * the cases of kube-apiserver 1.18's own tests (`pkg/audit/policy/dynamic_test.go`,
 * `enforce_test.go`, `plugin/pkg/audit/dynamic/enforced/enforced_test.go`).
 */
import assert from "node:assert/strict";
import { dynamicToPolicy, enforcePolicy, invertStages } from "../policy/dynamic.ts";
import { compilePolicy, evaluate } from "../policy/mod.ts";
import { applyPolicy } from "../policy/mod.ts";
import type { Event, Level, Stage } from "../pipeline/core/event.ts";

function event(over: Partial<Event> = {}): Event {
  return {
    level: "RequestResponse",
    auditID: "e1",
    stage: "ResponseComplete",
    requestURI: "/apis/extensions/v1beta1",
    verb: "create",
    user: { username: "alice" },
    sourceIPs: ["10.0.0.1"],
    userAgent: "kubectl",
    objectRef: { resource: "deployments", namespace: "default", name: "web" },
    responseStatus: { metadata: {}, code: 201 },
    requestObject: { kind: "Deployment", spec: { replicas: 1 } },
    responseObject: { kind: "Deployment", status: {} },
    requestReceivedTimestamp: "2024-01-01T00:00:00.000000Z",
    stageTimestamp: "2024-01-01T00:00:00.100000Z",
    annotations: { "authorization.k8s.io/decision": "allow" },
    ...over,
  } as Event;
}

Deno.test("dynamic policy: full conversion is one rule at the level, every unlisted stage omitted (dynamic_test 'should convert full')", () => {
  const p = dynamicToPolicy({ level: "Metadata", stages: ["ResponseComplete"] });
  assert.deepEqual(p.rules, [{ level: "Metadata" }]);
  assert.deepEqual(
    [...p.omitStages!].sort(),
    ["Panic", "RequestReceived", "ResponseStarted"],
  );
});

Deno.test("dynamic policy: missing stages omit every stage (dynamic_test 'should convert missing stages')", () => {
  const p = dynamicToPolicy({ level: "Metadata" });
  assert.deepEqual(p.rules, [{ level: "Metadata" }]);
  assert.deepEqual(
    [...p.omitStages!].sort(),
    ["Panic", "RequestReceived", "ResponseComplete", "ResponseStarted"],
  );
});

Deno.test("dynamic policy: invertStages subtracts from all stages in stage order", () => {
  assert.deepEqual(invertStages([]), [
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
  ]);
  assert.deepEqual(invertStages(["RequestReceived", "Panic"]), [
    "ResponseStarted",
    "ResponseComplete",
  ]);
});

// enforce_test.go TestEnforcePolicy: each level on events of every stage.
const metadataFields = (e: Event) => {
  const { requestObject: _q, responseObject: _r, ...rest } = e;
  return rest;
};

for (
  const [name, level, omit] of [
    ["level metadata", "Metadata", []],
    ["level request", "Request", []],
    ["level requestresponse", "RequestResponse", []],
    ["level none", "None", []],
    ["stage valid", "Request", ["RequestReceived"]],
  ] as [string, Level, Stage[]][]
) {
  Deno.test(`dynamic policy: enforce_test '${name}'`, () => {
    for (
      const stage of ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"] as const
    ) {
      const e = event({ stage });
      const before = structuredClone(e);
      const out = enforcePolicy(e, level, omit);
      assert.deepEqual(e, before, "the input event is never changed");
      if (omit.includes(stage)) {
        assert.equal(out, "omitted_stage");
        continue;
      }
      switch (level) {
        case "None":
          assert.equal(out, "policy");
          break;
        case "Metadata":
          assert.deepEqual(out, { ...metadataFields(e), level: "Metadata" });
          break;
        case "Request": {
          const { responseObject: _r, ...rest } = e;
          assert.deepEqual(out, { ...rest, level: "Request" });
          break;
        }
        case "RequestResponse":
          assert.deepEqual(out, e);
          break;
      }
    }
  });
}

Deno.test("dynamic policy: an event below the sink's level passes as it is (its objects cannot come back)", () => {
  const e = event({ level: "Metadata", requestObject: undefined, responseObject: undefined });
  assert.equal(enforcePolicy(e, "RequestResponse", []), e);
});

Deno.test("dynamic policy: enforced_test 'enforce level': RequestResponse event to a Metadata sink", () => {
  const compiled = compilePolicy(
    dynamicToPolicy({ level: "Metadata", stages: ["ResponseComplete"] }),
  );
  const e = event();
  const out = applyPolicy(evaluate(compiled, e), e);
  assert.deepEqual(out, { ...metadataFields(e), level: "Metadata" });
});

Deno.test("dynamic policy: a stage not listed is dropped, a level None drops everything", () => {
  const compiled = compilePolicy(
    dynamicToPolicy({ level: "Request", stages: ["ResponseComplete"] }),
  );
  const started = event({ stage: "ResponseStarted" });
  assert.equal(applyPolicy(evaluate(compiled, started), started), "omitted_stage");
  const none = compilePolicy(dynamicToPolicy({ level: "None" }));
  const e = event();
  const out = applyPolicy(evaluate(none, e), e);
  assert.ok(out === "policy" || out === "omitted_stage");
});
