/**
 * Applying a policy result to a finished event: dropping, lowering without raising, and
 * stripping managed fields, without ever changing the shared input.
 */
import assert from "node:assert/strict";
import { applyPolicy, type PolicyResult, stripManagedFields } from "../policy/mod.ts";
import type { Event, Level, Stage } from "../pipeline/core/event.ts";

const result = (
  level: Level,
  omitStages: Stage[] = [],
  omitManagedFields = false,
): PolicyResult => ({ level, omitStages, omitManagedFields, rule: 0 });

const managed = [{ manager: "kubectl", operation: "Update" }];

function event(over: Record<string, unknown> = {}): Event {
  return {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "RequestResponse",
    auditID: "a",
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods",
    verb: "create",
    user: { username: "alice" },
    objectRef: { resource: "pods", namespace: "default", name: "web-0" },
    responseStatus: { metadata: {}, code: 201 },
    requestObject: { kind: "Pod", metadata: { name: "web-0", managedFields: managed }, spec: {} },
    responseObject: { kind: "Pod", metadata: { name: "web-0", managedFields: managed, uid: "u" } },
    requestReceivedTimestamp: "2024-01-01T00:00:00.000000Z",
    stageTimestamp: "2024-01-01T00:00:00.100000Z",
    annotations: { "authorization.k8s.io/decision": "allow" },
    ...over,
  } as Event;
}

/** A deep copy to compare the input against after applying. */
const snapshot = (e: Event) => structuredClone(e);

Deno.test("an omitted stage drops the event, even under level None", () => {
  const e = event({ stage: "RequestReceived" });
  assert.equal(applyPolicy(result("Metadata", ["RequestReceived"]), e), "omitted_stage");
  assert.equal(applyPolicy(result("None", ["RequestReceived"]), e), "omitted_stage");
});

Deno.test("level None drops the event", () => {
  assert.equal(applyPolicy(result("None", ["Panic"]), event()), "policy");
});

Deno.test("an unchanged event is returned as the same object", () => {
  const e = event();
  assert.equal(applyPolicy(result("RequestResponse"), e), e);
  const meta = event({ level: "Metadata", requestObject: undefined, responseObject: undefined });
  delete meta.requestObject;
  delete meta.responseObject;
  assert.equal(applyPolicy(result("Metadata", [], true), meta), meta);
});

Deno.test("Metadata removes both objects, in a copy, keeping key order", () => {
  const e = event();
  const before = snapshot(e);
  const out = applyPolicy(result("Metadata"), e);
  assert.ok(typeof out === "object" && out !== e);
  assert.equal(out.level, "Metadata");
  assert.equal("requestObject" in out, false);
  assert.equal("responseObject" in out, false);
  assert.deepEqual(
    Object.keys(out),
    Object.keys(e).filter((k) => k !== "requestObject" && k !== "responseObject"),
  );
  assert.deepEqual(e, before, "the input is untouched");
  assert.equal(out.user, e.user, "unchanged parts are shared, not copied");
});

Deno.test("Request removes only the response object", () => {
  const e = event();
  const out = applyPolicy(result("Request"), e) as Event;
  assert.equal(out.level, "Request");
  assert.equal(out.requestObject, e.requestObject);
  assert.equal("responseObject" in out, false);
});

Deno.test("a level is never raised", () => {
  const e = event({ level: "Metadata", requestObject: undefined, responseObject: undefined });
  delete e.requestObject;
  delete e.responseObject;
  assert.equal(applyPolicy(result("RequestResponse"), e), e);
  const req = event({ level: "Request" });
  delete req.responseObject;
  assert.equal(applyPolicy(result("RequestResponse"), req), req);
});

Deno.test("an event at Metadata with stray objects loses them under a higher rule", () => {
  const e = event({ level: "Metadata" });
  const out = applyPolicy(result("RequestResponse"), e) as Event;
  assert.notEqual(out, e);
  assert.equal(out.level, "Metadata");
  assert.equal("requestObject" in out, false);
});

Deno.test("omitManagedFields strips managedFields from copies of both objects", () => {
  const e = event();
  const before = snapshot(e);
  const out = applyPolicy(result("RequestResponse", [], true), e) as Event;
  assert.deepEqual(out.requestObject, { kind: "Pod", metadata: { name: "web-0" }, spec: {} });
  assert.deepEqual(out.responseObject, { kind: "Pod", metadata: { name: "web-0", uid: "u" } });
  assert.equal(out.level, "RequestResponse");
  assert.deepEqual(e, before);
  assert.equal(
    (out.requestObject as { spec: unknown }).spec,
    (e.requestObject as { spec: unknown }).spec,
    "only the changed path is copied",
  );
});

Deno.test("omitManagedFields strips every item of a list", () => {
  const list = {
    kind: "PodList",
    metadata: { resourceVersion: "1" },
    items: [
      { metadata: { name: "a", managedFields: managed } },
      { metadata: { name: "b" } },
    ],
  };
  const e = event({ verb: "list", requestObject: undefined, responseObject: list });
  delete e.requestObject;
  const out = applyPolicy(result("RequestResponse", [], true), e) as Event;
  const items = (out.responseObject as typeof list).items;
  assert.deepEqual(items, [{ metadata: { name: "a" } }, { metadata: { name: "b" } }]);
  assert.equal(items[1], list.items[1], "unchanged items are shared");
  assert.ok("managedFields" in list.items[0].metadata, "the input list is untouched");
});

Deno.test("omitManagedFields strips row objects of a Table", () => {
  const table = {
    kind: "Table",
    rows: [{
      cells: ["a"],
      object: { kind: "PartialObjectMetadata", metadata: { name: "a", managedFields: managed } },
    }],
  };
  assert.deepEqual(stripManagedFields(table), {
    kind: "Table",
    rows: [{ cells: ["a"], object: { kind: "PartialObjectMetadata", metadata: { name: "a" } } }],
  });
});

Deno.test("a patch body is left as sent; its response is stripped", () => {
  const patch = { metadata: { managedFields: null } };
  const e = event({ verb: "patch", requestObject: patch });
  const out = applyPolicy(result("RequestResponse", [], true), e) as Event;
  assert.equal(out.requestObject, patch);
  assert.deepEqual(out.responseObject, { kind: "Pod", metadata: { name: "web-0", uid: "u" } });
});

Deno.test("objects without managed fields and non-objects are returned as they are", () => {
  const o = { metadata: { name: "x" } };
  assert.equal(stripManagedFields(o), o);
  assert.equal(stripManagedFields("raw"), "raw");
  assert.equal(stripManagedFields(null), null);
  const e = event({
    requestObject: { metadata: {} },
    responseObject: { items: [{ metadata: {} }] },
  });
  assert.equal(applyPolicy(result("RequestResponse", [], true), e), e);
});

Deno.test("managed fields are not stripped when the policy does not ask", () => {
  const e = event();
  assert.equal(applyPolicy(result("RequestResponse", [], false), e), e);
});
