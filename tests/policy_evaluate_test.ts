/**
 * Evaluation subtleties beyond upstream's tables: how event fields stand in for request
 * attributes, and the wildcard forms of resources and non-resource URLs.
 */
import assert from "node:assert/strict";
import {
  compilePolicy,
  evaluate,
  policyFromObject,
  type PolicyRule,
  requestPath,
} from "../policy/mod.ts";
import type { Event } from "../pipeline/core/event.ts";

function compiled(rules: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return compilePolicy(
    policyFromObject({ apiVersion: "audit.k8s.io/v1", kind: "Policy", ...extra, rules }, "t")
      .policy,
  );
}

function event(over: Partial<Event> & Record<string, unknown>): Event {
  return {
    level: "RequestResponse",
    auditID: "a",
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods/web-0",
    verb: "get",
    user: { username: "alice", groups: ["devs", "system:authenticated"] },
    objectRef: { resource: "pods", namespace: "default", name: "web-0", apiVersion: "v1" },
    requestReceivedTimestamp: null,
    stageTimestamp: null,
    ...over,
  } as Event;
}

/** Whether a Metadata rule with these conditions matches `e`. */
function matches(rule: Omit<PolicyRule, "level">, e: Event): boolean {
  return evaluate(compiled([{ level: "Metadata", ...rule }]), e).rule === 0;
}

const scale = event({
  requestURI: "/apis/apps/v1/namespaces/default/deployments/web/scale",
  objectRef: {
    resource: "deployments",
    namespace: "default",
    name: "web",
    apiGroup: "apps",
    subresource: "scale",
  },
});
const podLog = event({
  objectRef: { resource: "pods", namespace: "default", name: "web-0", subresource: "log" },
});
const node = event({ objectRef: { resource: "nodes", name: "n1" } });

Deno.test("pods/* matches plain pods and every pod subresource, pods matches no subresource", () => {
  assert.ok(matches({ resources: [{ resources: ["pods/*"] }] }, event({})));
  assert.ok(matches({ resources: [{ resources: ["pods/*"] }] }, podLog));
  assert.ok(!matches({ resources: [{ resources: ["pods"] }] }, podLog));
  assert.ok(matches({ resources: [{ resources: ["pods/log"] }] }, podLog));
  assert.ok(!matches({ resources: [{ resources: ["pods/log"] }] }, event({})));
});

Deno.test("*/scale matches the scale subresource of any resource but no plain resource", () => {
  const rule = { resources: [{ group: "apps", resources: ["*/scale"] }] };
  assert.ok(matches(rule, scale));
  assert.ok(
    !matches(
      rule,
      event({ objectRef: { resource: "deployments", apiGroup: "apps", name: "web" } }),
    ),
  );
  assert.ok(!matches({ resources: [{ resources: ["*/scale"] }] }, scale), "core group only");
});

Deno.test("group * matches every group, an absent group only the core group", () => {
  assert.ok(matches({ resources: [{ group: "*", resources: ["deployments/scale"] }] }, scale));
  assert.ok(matches({ resources: [{ group: "*" }] }, event({})));
  assert.ok(!matches({ resources: [{ resources: ["*"] }] }, scale));
  assert.ok(matches({ resources: [{ resources: ["*"] }] }, podLog));
});

Deno.test('namespace "" matches cluster-scoped objects only', () => {
  assert.ok(matches({ namespaces: [""] }, node));
  assert.ok(!matches({ namespaces: [""] }, event({})));
  assert.ok(matches({ namespaces: ["default"] }, event({})));
});

Deno.test("resourceNames match the object's name and fail requests without one", () => {
  const rule = { resources: [{ resources: ["pods"], resourceNames: ["web-0"] }] };
  assert.ok(matches(rule, event({})));
  assert.ok(!matches(rule, event({ objectRef: { resource: "pods", namespace: "default" } })));
  const two = {
    resources: [{ resources: ["pods"], resourceNames: ["x"] }, { resources: ["pods"] }],
  };
  assert.ok(matches(two, event({})), "another entry of the same group still matches");
});

Deno.test("a resource request is one with an objectRef, even an empty one", () => {
  const urls = { nonResourceURLs: ["*"] };
  assert.ok(!matches(urls, event({})));
  assert.ok(!matches(urls, event({ objectRef: {} })));
  assert.ok(matches(urls, event({ objectRef: undefined, requestURI: "/healthz" })));
  assert.ok(matches({ resources: [{ resources: [""] }] }, event({ objectRef: {} })));
  assert.ok(!matches({ namespaces: ["default"] }, event({ objectRef: undefined })));
});

Deno.test("non-resource URLs: * matches all, exact paths, and trailing-* character prefixes", () => {
  const at = (uri: string) => event({ objectRef: undefined, requestURI: uri });
  const rule = { nonResourceURLs: ["/healthz*", "/metrics"] };
  assert.ok(matches(rule, at("/healthz")));
  assert.ok(matches(rule, at("/healthz/etcd")));
  assert.ok(matches(rule, at("/healthzfoo")), "a plain character prefix, not a path prefix");
  assert.ok(matches(rule, at("/metrics")));
  assert.ok(!matches(rule, at("/metrics/cadvisor")));
  assert.ok(!matches(rule, at("/readyz")));
});

Deno.test("the path is the requestURI without its query, percent-decoded", () => {
  const at = (uri: string) => event({ objectRef: undefined, requestURI: uri });
  assert.ok(matches({ nonResourceURLs: ["/metrics"] }, at("/metrics?x=1&y=%2F")));
  assert.ok(matches({ nonResourceURLs: ["/a b"] }, at("/a%20b")));
  assert.ok(matches({ nonResourceURLs: ["/a+b"] }, at("/a+b")), "+ is not a space in a path");
  assert.equal(requestPath("/logs/%zz?q"), "/logs/%zz", "an undecodable path is kept raw");
  assert.equal(requestPath("/api/v1?watch=true"), "/api/v1");
});

Deno.test("users and groups come from user, never impersonatedUser", () => {
  const e = event({ impersonatedUser: { username: "bob", groups: ["admins"] } });
  assert.ok(matches({ users: ["alice"] }, e));
  assert.ok(!matches({ users: ["bob"] }, e));
  assert.ok(!matches({ userGroups: ["admins"] }, e));
  assert.ok(matches({ userGroups: ["system:authenticated"] }, e));
});

Deno.test('user {} is a user named "" without groups; no user at all fails every user rule', () => {
  const empty = event({ user: {} });
  assert.ok(matches({ users: [""] }, empty));
  assert.ok(!matches({ users: ["alice"] }, empty));
  assert.ok(!matches({ userGroups: ["system:unauthenticated"] }, empty));
  const none = event({});
  delete (none as Partial<Event>).user;
  assert.ok(!matches({ users: [""] }, none));
  assert.ok(!matches({ userGroups: [""] }, none));
  assert.ok(matches({ verbs: ["get"] }, none));
});

Deno.test("verbs, users and groups are exact and case-sensitive", () => {
  assert.ok(!matches({ verbs: ["GET"] }, event({})));
  assert.ok(!matches({ users: ["Alice"] }, event({})));
  assert.ok(matches({ verbs: [""] }, event({ verb: "" })));
});

Deno.test("the first matching rule wins and returns the same frozen result every time", () => {
  const p = compiled([
    { level: "None", users: ["bob"] },
    { level: "Request", resources: [{ resources: ["pods"] }] },
    { level: "Metadata" },
  ]);
  const a = evaluate(p, event({}));
  const b = evaluate(p, event({ auditID: "b" }));
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.omitStages));
  assert.deepEqual(a, { level: "Request", omitStages: [], omitManagedFields: false, rule: 1 });
  assert.equal(evaluate(p, node).rule, 2);
});

Deno.test("no matching rule gives None with the policy's stages and managed-fields choice", () => {
  const p = compiled([{ level: "Metadata", users: ["bob"] }], {
    omitStages: ["Panic", "RequestReceived"],
    omitManagedFields: true,
  });
  assert.deepEqual(evaluate(p, event({})), {
    level: "None",
    omitStages: ["RequestReceived", "Panic"],
    omitManagedFields: true,
    rule: null,
  });
});

Deno.test("each compiled policy has its own small id", () => {
  const a = compiled([{ level: "None" }]);
  const b = compiled([{ level: "None" }]);
  assert.notEqual(a.id, b.id);
  assert.ok(Number.isInteger(a.id) && a.id >= 0);
});
