/**
 * Kubernetes' own policy checker tables (checker_test.go), run against events as a
 * downstream daemon sees them. See tests/fixtures/policy/checker.json for the mapping.
 */
import assert from "node:assert/strict";
import { compilePolicy, evaluate, policyFromObject } from "../policy/mod.ts";
import type { Event, Level, Stage } from "../pipeline/core/event.ts";

interface Fixture {
  requests: Record<string, Event>;
  rules: Record<string, Record<string, unknown>>;
  testAuditLevel: [string, Level, ...string[]][];
  TestChecker: [string, Level, Stage[], Stage[], ...string[]][];
  TestCheckerPolicyOmitStages: [string, Level, Stage[], Stage[], ...string[]][];
  TestUnionStages: [Stage[] | null, Stage[], Stage[]][];
  TestOmitManagedFields: {
    request: Event;
    cases: { name: string; policy: boolean; rule: boolean | null; want: boolean }[];
  };
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/policy/checker.json", import.meta.url)),
);

const STAGE_ORDER: Stage[] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];
const inStageOrder = (s: Stage[]) => STAGE_ORDER.filter((x) => s.includes(x));

function check(
  req: string,
  level: Level,
  policyStages: Stage[],
  expStages: Stage[],
  ruleNames: string[],
): void {
  const rules = ruleNames.map((n) => {
    assert.ok(n in fixture.rules, `unknown rule ${n}`);
    return fixture.rules[n];
  });
  assert.ok(req in fixture.requests, `unknown request ${req}`);
  const { policy } = policyFromObject(
    { apiVersion: "audit.k8s.io/v1", kind: "Policy", omitStages: policyStages, rules },
    "checker.json",
  );
  const result = evaluate(compilePolicy(policy), fixture.requests[req]);
  const what = `request:${req} rules:${ruleNames.join(",")}`;
  assert.equal(result.level, level, what);
  assert.deepEqual(result.omitStages, inStageOrder(expStages), what);
}

const POLICY_STAGES: Stage[] = ["RequestReceived", "ResponseStarted"];

for (
  const [name, policyStages] of [["TestChecker", []], [
    "TestCheckerPolicyOmitStages",
    POLICY_STAGES,
  ]] as const
) {
  for (const [req, level, ...ruleNames] of fixture.testAuditLevel) {
    Deno.test(`${name}: ${req} under [${ruleNames.join(", ")}] is ${level}`, () => {
      check(req, level, [...policyStages], [...policyStages], ruleNames);
    });
  }
}

for (const name of ["TestChecker", "TestCheckerPolicyOmitStages"] as const) {
  for (const [req, level, policyStages, expStages, ...ruleNames] of fixture[name]) {
    Deno.test(
      `${name}: ${req} under [${ruleNames.join(", ")}] with policy omitStages [${policyStages}] ` +
        `omits [${expStages}]`,
      () => check(req, level, policyStages, expStages, ruleNames),
    );
  }
}

Deno.test("TestChecker and TestCheckerPolicyOmitStages tables are ported whole", () => {
  assert.equal(fixture.testAuditLevel.length, 45);
  assert.equal(fixture.TestChecker.length, 6);
  assert.equal(fixture.TestCheckerPolicyOmitStages.length, 6);
});

for (const [policyStages, ruleStages, want] of fixture.TestUnionStages) {
  Deno.test(
    `TestUnionStages: policy [${policyStages ?? "nil"}] and rule [${ruleStages}] omit [${want}]`,
    () => {
      const { policy } = policyFromObject(
        {
          apiVersion: "audit.k8s.io/v1",
          kind: "Policy",
          omitStages: policyStages,
          rules: [{ level: "Metadata", omitStages: ruleStages }],
        },
        "checker.json",
      );
      const result = evaluate(compilePolicy(policy), fixture.TestOmitManagedFields.request);
      assert.deepEqual(result.omitStages, inStageOrder(want));
    },
  );
}

for (const c of fixture.TestOmitManagedFields.cases) {
  Deno.test(`TestOmitManagedFields: ${c.name}`, () => {
    const rule: Record<string, unknown> = { level: "RequestResponse", verbs: ["get"] };
    if (c.rule !== null) rule.omitManagedFields = c.rule;
    const { policy } = policyFromObject(
      { apiVersion: "audit.k8s.io/v1", kind: "Policy", omitManagedFields: c.policy, rules: [rule] },
      "checker.json",
    );
    const result = evaluate(compilePolicy(policy), fixture.TestOmitManagedFields.request);
    assert.equal(result.level, "RequestResponse");
    assert.equal(result.omitManagedFields, c.want);
  });
}
