/**
 * `auditpipe rbac`'s decisions, table by table: audit2rbac's own cases (its
 * pkg/process_test.go and cmd/audit2rbac/audit2rbac_test.go, ported), and the choices it
 * makes on events (which count, what a request's attributes are), rules (compaction) and
 * generated objects (names, labels, annotations, subjects).
 */
import assert from "node:assert/strict";
import { parseRbacArgs, sanitizeLabel, sanitizeName } from "../cli/rbac/args.ts";
import {
  type Attributes,
  compareRequests,
  eventToAttributes,
  nonResourceAttributes,
} from "../cli/rbac/attributes.ts";
import { RbacAuthorizer, ruleAllows } from "../cli/rbac/authorize.ts";
import { compactRules } from "../cli/rbac/compact.ts";
import {
  DEFAULT_GENERATE_OPTIONS,
  discoveryObjects,
  type GenerateOptions,
  generateRbac,
} from "../cli/rbac/generate.ts";
import {
  emptyObjects,
  type PolicyRule,
  RBAC_GROUP,
  type RbacObjects,
  userSubject,
} from "../cli/rbac/objects.ts";
import { eventCounts } from "../cli/rbac/select.ts";
import type { Event } from "../pipeline/core/event.ts";
import { VERSION } from "../cli/version.ts";
import { testEvent } from "./helpers/events.ts";

const BOB = { user: "bob", groups: ["system:authenticated"] };

/** A resource request of bob's. */
function res(
  verb: string,
  resource: string,
  o: { ns?: string; name?: string; group?: string; sub?: string } = {},
): Attributes {
  return {
    ...BOB,
    verb,
    resourceRequest: true,
    namespace: o.ns ?? "",
    name: o.name ?? "",
    apiGroup: o.group ?? "",
    apiVersion: "",
    resource,
    subresource: o.sub ?? "",
    path: "",
  };
}

/** A non-resource request of bob's. */
function url(verb: string, path: string): Attributes {
  return nonResourceAttributes({ ...BOB, verb }, path);
}

/** A rule as audit2rbac's tests write them (NewRule(verbs).Groups().Resources().Names()). */
function rule(verbs: string[], group: string, resources: string[], names?: string[]): PolicyRule {
  const r: PolicyRule = { verbs, apiGroups: [group], resources };
  if (names) r.resourceNames = names;
  return r;
}

/** The objects audit2rbac's table tests start from: cluster-admin for system:masters, discovery. */
function testExisting(): RbacObjects {
  const o = emptyObjects();
  o.clusterRoles.push(
    {
      metadata: { name: "cluster-admin" },
      rules: [
        { verbs: ["*"], apiGroups: ["*"], resources: ["*"] },
        { verbs: ["*"], nonResourceURLs: ["*"] },
      ],
    },
    {
      metadata: { name: "system:discovery" },
      rules: [{
        verbs: ["get"],
        nonResourceURLs: [
          "/healthz",
          "/version",
          "/swaggerapi",
          "/swaggerapi/*",
          "/api",
          "/api/*",
          "/apis",
          "/apis/*",
        ],
      }],
    },
  );
  o.clusterRoleBindings.push(
    {
      metadata: { name: "cluster-admin" },
      subjects: [{ kind: "Group", apiGroup: RBAC_GROUP, name: "system:masters" }],
      roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: "cluster-admin" },
    },
    {
      metadata: { name: "system:discovery" },
      subjects: [{ kind: "Group", apiGroup: RBAC_GROUP, name: "system:authenticated" }],
      roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: "system:discovery" },
    },
  );
  return o;
}

/** What a generated case should hold: cluster rules, and rules per namespace. */
interface Expected {
  cluster?: PolicyRule[];
  namespaced?: Record<string, PolicyRule[]>;
}

const BOB_SUBJECT = [{ kind: "User", apiGroup: RBAC_GROUP, name: "bob" }];

function expectedObjects(e: Expected): RbacObjects {
  const o = emptyObjects();
  const ref = (kind: string) => ({ apiGroup: RBAC_GROUP, kind, name: "audit2rbac" });
  if (e.cluster) {
    o.clusterRoles.push({ metadata: { name: "audit2rbac" }, rules: e.cluster });
    o.clusterRoleBindings.push({
      metadata: { name: "audit2rbac" },
      roleRef: ref("ClusterRole"),
      subjects: BOB_SUBJECT,
    });
  }
  for (const [ns, rules] of Object.entries(e.namespaced ?? {})) {
    o.roles.push({ metadata: { name: "audit2rbac", namespace: ns }, rules });
    o.roleBindings.push({
      metadata: { name: "audit2rbac", namespace: ns },
      roleRef: ref("Role"),
      subjects: BOB_SUBJECT,
    });
  }
  return o;
}

const noNames: GenerateOptions = { ...DEFAULT_GENERATE_OPTIONS, expandMultipleNames: false };
const noNamespaces: GenerateOptions = {
  ...DEFAULT_GENERATE_OPTIONS,
  expandMultipleNamespaces: false,
};
const neither: GenerateOptions = {
  ...DEFAULT_GENERATE_OPTIONS,
  expandMultipleNames: false,
  expandMultipleNamespaces: false,
};

const CLUSTER_NAMED_GETS = [
  res("get", "nodes", { name: "node1" }),
  res("get", "nodes", { name: "node2" }),
  res("get", "storageclasses", { group: "storage.k8s.io", name: "sc1" }),
  res("get", "storageclasses", { group: "storage.k8s.io", name: "sc2" }),
];

const NAMESPACED_GETS = [
  res("get", "configmaps", { ns: "ns1", name: "cm1" }),
  res("get", "pods", { ns: "ns2", name: "pod1" }),
  res("get", "pods", { ns: "ns2", name: "pod2" }),
  res("get", "pods", { ns: "ns3", name: "pod1" }),
  res("get", "pods", { ns: "ns3", name: "pod3" }),
  res("get", "deployments", { ns: "ns2", name: "dep1", group: "apps" }),
  res("get", "deployments", { ns: "ns2", name: "dep2", group: "apps" }),
  res("get", "deployments", { ns: "ns3", name: "dep1", group: "apps" }),
  res("get", "deployments", { ns: "ns3", name: "dep3", group: "apps" }),
];

const PROCESS_OPTIONS_CASES: {
  name: string;
  opts: GenerateOptions;
  requests: Attributes[];
  expected: Expected;
}[] = [
  { name: "empty", opts: DEFAULT_GENERATE_OPTIONS, requests: [], expected: {} },
  {
    name: "already allowed by existing",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: [url("get", "/api"), url("get", "/apis")],
    expected: {},
  },
  {
    name: "nonresource",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: [url("get", "/foo")],
    expected: { cluster: [{ verbs: ["get"], nonResourceURLs: ["/foo"] }] },
  },
  {
    name: "cluster-scoped named resource",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: [
      res("get", "nodes", { name: "mynode" }),
      res("get", "storageclasses", { group: "storage.k8s.io", name: "mysc" }),
    ],
    expected: {
      cluster: [
        rule(["get"], "", ["nodes"], ["mynode"]),
        rule(["get"], "storage.k8s.io", ["storageclasses"], ["mysc"]),
      ],
    },
  },
  {
    name: "cluster-scoped named resources with name expansion",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: CLUSTER_NAMED_GETS,
    expected: {
      cluster: [
        rule(["get"], "", ["nodes"]),
        rule(["get"], "storage.k8s.io", ["storageclasses"]),
      ],
    },
  },
  {
    name: "cluster-scoped named resources without name expansion",
    opts: noNames,
    requests: CLUSTER_NAMED_GETS,
    expected: {
      cluster: [
        rule(["get"], "", ["nodes"], ["node1", "node2"]),
        rule(["get"], "storage.k8s.io", ["storageclasses"], ["sc1", "sc2"]),
      ],
    },
  },
  {
    name: "cluster-scoped named resources without name expansion with covering verb expansion",
    opts: noNames,
    requests: [
      ...CLUSTER_NAMED_GETS,
      // Sorted first, widened to get+list+watch: they cover the gets.
      res("list", "nodes"),
      res("list", "storageclasses", { group: "storage.k8s.io" }),
    ],
    expected: {
      cluster: [
        rule(["get", "list", "watch"], "", ["nodes"]),
        rule(["get", "list", "watch"], "storage.k8s.io", ["storageclasses"]),
      ],
    },
  },
  {
    name: "namespaced named resources",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: [
      res("get", "configmaps", { ns: "ns1", name: "cm1" }),
      res("get", "pods", { ns: "ns2", name: "pod1" }),
    ],
    expected: {
      namespaced: {
        ns1: [rule(["get"], "", ["configmaps"], ["cm1"])],
        ns2: [rule(["get"], "", ["pods"], ["pod1"])],
      },
    },
  },
  {
    name: "namespaced named resources with namespace and name expansion",
    opts: DEFAULT_GENERATE_OPTIONS,
    requests: [
      res("get", "configmaps", { ns: "ns1", name: "cm1" }),
      res("get", "pods", { ns: "ns1", name: "pod1" }),
      res("get", "pods", { ns: "ns1", name: "pod2" }),
      res("get", "pods", { ns: "ns2", name: "pod1" }),
      res("get", "pods", { ns: "ns2", name: "pod2" }),
      res("get", "deployments", { ns: "ns1", name: "dep1", group: "apps" }),
      res("get", "deployments", { ns: "ns1", name: "dep2", group: "apps" }),
      res("get", "deployments", { ns: "ns2", name: "dep1", group: "apps" }),
      res("get", "deployments", { ns: "ns2", name: "dep2", group: "apps" }),
    ],
    expected: {
      cluster: [rule(["get"], "", ["pods"]), rule(["get"], "apps", ["deployments"])],
      namespaced: { ns1: [rule(["get"], "", ["configmaps"], ["cm1"])] },
    },
  },
  {
    name: "namespaced named resources with namespace expansion",
    opts: noNames,
    requests: [
      res("get", "configmaps", { ns: "ns1", name: "cm1" }),
      res("get", "pods", { ns: "ns2", name: "pod1" }),
      res("get", "pods", { ns: "ns3", name: "pod1" }),
      res("get", "deployments", { ns: "ns2", name: "dep1", group: "apps" }),
      res("get", "deployments", { ns: "ns3", name: "dep1", group: "apps" }),
      res("get", "pods", { ns: "ns2", name: "pod2" }),
      res("get", "pods", { ns: "ns3", name: "pod3" }),
      res("get", "deployments", { ns: "ns2", name: "dep2", group: "apps" }),
      res("get", "deployments", { ns: "ns3", name: "dep3", group: "apps" }),
    ],
    expected: {
      cluster: [
        rule(["get"], "", ["pods"], ["pod1"]),
        rule(["get"], "apps", ["deployments"], ["dep1"]),
      ],
      namespaced: {
        ns1: [rule(["get"], "", ["configmaps"], ["cm1"])],
        ns2: [
          rule(["get"], "", ["pods"], ["pod2"]),
          rule(["get"], "apps", ["deployments"], ["dep2"]),
        ],
        ns3: [
          rule(["get"], "", ["pods"], ["pod3"]),
          rule(["get"], "apps", ["deployments"], ["dep3"]),
        ],
      },
    },
  },
  {
    name: "namespaced named resources with name expansion",
    opts: noNamespaces,
    requests: NAMESPACED_GETS,
    expected: {
      namespaced: {
        ns1: [rule(["get"], "", ["configmaps"], ["cm1"])],
        ns2: [rule(["get"], "", ["pods"]), rule(["get"], "apps", ["deployments"])],
        ns3: [rule(["get"], "", ["pods"]), rule(["get"], "apps", ["deployments"])],
      },
    },
  },
  {
    name: "namespaced named resources without name or namespace expansion",
    opts: neither,
    requests: NAMESPACED_GETS,
    expected: {
      namespaced: {
        ns1: [rule(["get"], "", ["configmaps"], ["cm1"])],
        ns2: [
          rule(["get"], "", ["pods"], ["pod1", "pod2"]),
          rule(["get"], "apps", ["deployments"], ["dep1", "dep2"]),
        ],
        ns3: [
          rule(["get"], "", ["pods"], ["pod1", "pod3"]),
          rule(["get"], "apps", ["deployments"], ["dep1", "dep3"]),
        ],
      },
    },
  },
  {
    name:
      "namespaced named resources without name or namespace expansion with covering cluster operation",
    opts: neither,
    requests: [
      ...NAMESPACED_GETS,
      // Sorted first, widened to get+list+watch: they cover the namespaced gets.
      res("list", "deployments", { group: "apps" }),
      res("list", "configmaps"),
      res("list", "pods"),
    ],
    expected: {
      cluster: [
        rule(["get", "list", "watch"], "", ["configmaps", "pods"]),
        rule(["get", "list", "watch"], "apps", ["deployments"]),
      ],
    },
  },
];

for (const tc of PROCESS_OPTIONS_CASES) {
  Deno.test(`generate (audit2rbac's table): ${tc.name}`, () => {
    const got = generateRbac(tc.requests, testExisting(), tc.opts);
    assert.deepEqual(got, expectedObjects(tc.expected));
  });
}

Deno.test("generate (audit2rbac's process case): nodes, pods across namespaces and a lock configmap", () => {
  const requests = [
    url("get", "/api"),
    url("get", "/apis"),
    url("get", "/ui"),
    res("create", "nodes"),
    res("create", "nodes"),
    res("get", "nodes", { name: "node1" }),
    res("update", "nodes", { name: "node1" }),
    res("get", "nodes", { name: "node2" }),
    res("update", "nodes", { name: "node2" }),
    res("list", "nodes"),
    res("watch", "nodes"),
    res("list", "pods"),
    res("watch", "pods"),
    res("get", "pods", { ns: "ns1", name: "pod1" }),
    res("get", "pods", { ns: "ns1", name: "pod2" }),
    res("get", "pods", { ns: "ns2", name: "pod3" }),
    res("get", "pods", { ns: "ns2", name: "pod4" }),
    res("update", "pods", { ns: "ns1", name: "pod1", sub: "status" }),
    res("update", "pods", { ns: "ns1", name: "pod2", sub: "status" }),
    res("update", "pods", { ns: "ns2", name: "pod3", sub: "status" }),
    res("update", "pods", { ns: "ns2", name: "pod4", sub: "status" }),
    res("create", "configmaps", { ns: "kube-system" }),
    res("get", "configmaps", { ns: "kube-system", name: "mylock" }),
    res("update", "configmaps", { ns: "kube-system", name: "mylock" }),
    res("list", "configmaps", { ns: "kube-system" }),
    res("watch", "configmaps", { ns: "kube-system" }),
  ];
  const got = generateRbac(requests, testExisting(), DEFAULT_GENERATE_OPTIONS);
  assert.deepEqual(
    got,
    expectedObjects({
      cluster: [
        // update nodes on two names widens to any node: with create and the list, one rule.
        rule(["create", "get", "list", "patch", "update", "watch"], "", ["nodes"]),
        rule(["get", "list", "watch"], "", ["pods"]),
        rule(["get", "patch", "update"], "", ["pods/status"]),
        { verbs: ["get"], nonResourceURLs: ["/ui"] },
      ],
      namespaced: {
        "kube-system": [
          rule(["get", "patch", "update"], "", ["configmaps"], ["mylock"]),
          rule(["create", "get", "list", "watch"], "", ["configmaps"]),
        ],
      },
    }),
  );
  // Everything asked is allowed by what was generated plus what existed.
  const authz = new RbacAuthorizer({
    roles: got.roles,
    clusterRoles: [...got.clusterRoles, ...testExisting().clusterRoles],
    roleBindings: got.roleBindings,
    clusterRoleBindings: [...got.clusterRoleBindings, ...testExisting().clusterRoleBindings],
  });
  for (const r of requests) assert.ok(authz.allows(r), JSON.stringify(r));
});

/** A v1 event of `user` with `fields` over a resource-less base. */
function event(fields: Partial<Event> & { username?: string }): Event {
  const { username, ...rest } = fields;
  const user = { username: username ?? "bob", groups: ["system:authenticated"] };
  return testEvent("a", { requestURI: "/", user, ...rest });
}

Deno.test("attributes (audit2rbac's cases): a create's name is cleared, refused or accepted", () => {
  const ref = {
    apiGroup: "mygroup",
    apiVersion: "myversion",
    resource: "myresources",
    namespace: "mynamespace",
  };
  const want: Attributes = {
    user: "",
    groups: [],
    verb: "create",
    resourceRequest: true,
    namespace: "mynamespace",
    name: "",
    apiGroup: "mygroup",
    apiVersion: "myversion",
    resource: "myresources",
    subresource: "",
    path: "",
  };
  const bare = { user: {}, verb: "create" } as const;
  // Refused: no name (the body was never read).
  assert.deepEqual(eventToAttributes(event({ ...bare, objectRef: ref })), want);
  // Accepted: the event names the object, the authorizer was not asked about it.
  assert.deepEqual(
    eventToAttributes(event({ ...bare, objectRef: { ...ref, name: "myname" } })),
    want,
  );
});

Deno.test("attributes: the impersonated user, subresources, names of other verbs, paths without their query", () => {
  const a = eventToAttributes(event({
    username: "system:admin",
    impersonatedUser: { username: "bob", groups: ["devs"] },
    verb: "update",
    objectRef: {
      resource: "pods",
      subresource: "status",
      namespace: "ns1",
      name: "p1",
      apiVersion: "v1",
    },
  }));
  assert.equal(a.user, "bob");
  assert.deepEqual(a.groups, ["devs"]);
  assert.equal(a.name, "p1");
  assert.equal(a.subresource, "status");
  assert.ok(a.resourceRequest);
  const u = eventToAttributes(event({ requestURI: "/metrics?format=prometheus" }));
  assert.equal(u.resourceRequest, false);
  assert.equal(u.path, "/metrics");
});

Deno.test("which events count: the subject (impersonated or not), every stage, refused requests too, -n by object namespace", () => {
  const pods = { resource: "pods", namespace: "ns1", apiVersion: "v1" };
  assert.ok(eventCounts(event({ stage: "RequestReceived" }), "bob", ""));
  assert.ok(eventCounts(event({ responseStatus: { code: 403, reason: "Forbidden" } }), "bob", ""));
  assert.ok(
    eventCounts(event({ username: "admin", impersonatedUser: { username: "bob" } }), "bob", ""),
  );
  assert.ok(!eventCounts(event({ impersonatedUser: { username: "alice" } }), "bob", ""));
  assert.ok(!eventCounts(event({ username: "alice" }), "bob", ""));
  assert.ok(eventCounts(event({ objectRef: pods }), "bob", "ns1"));
  assert.ok(!eventCounts(event({ objectRef: pods }), "bob", "ns2"));
  // A non-resource request is in no namespace.
  assert.ok(!eventCounts(event({ requestURI: "/metrics" }), "bob", "ns1"));
});

Deno.test("discovery paths are already allowed for authenticated users only", () => {
  const discovery = discoveryObjects();
  for (
    const p of ["/api", "/apis/apps/v1", "/version", "/healthz", "/openapi/v2", "/swagger.json"]
  ) {
    assert.deepEqual(
      generateRbac([url("get", p)], discovery, DEFAULT_GENERATE_OPTIONS),
      emptyObjects(),
      p,
    );
  }
  const anonymous = { ...url("get", "/api"), groups: [] };
  assert.equal(
    generateRbac([anonymous], discovery, DEFAULT_GENERATE_OPTIONS).clusterRoles.length,
    1,
  );
  const other = generateRbac(
    [url("get", "/metrics"), url("post", "/api")],
    discovery,
    DEFAULT_GENERATE_OPTIONS,
  );
  // Sorted by their compact text: "/api" before "/metrics".
  assert.deepEqual(other.clusterRoles[0].rules, [
    { verbs: ["post"], nonResourceURLs: ["/api"] },
    { verbs: ["get"], nonResourceURLs: ["/metrics"] },
  ]);
});

Deno.test("a service account's objects: ServiceAccount subject, sanitized name and label", () => {
  const a = parseRbacArgs(["--serviceaccount", "ns1:sa1"]);
  assert.equal(a.kind, "run");
  if (a.kind !== "run") return;
  assert.equal(a.user, "system:serviceaccount:ns1:sa1");
  assert.equal(a.name, "audit2rbac:system:serviceaccount:ns1:sa1");
  assert.deepEqual(a.labels, {
    "audit2rbac.liggitt.net/user": "system-serviceaccount-ns1-sa1",
    "audit2rbac.liggitt.net/generated": "true",
  });
  assert.deepEqual(a.annotations, { "audit2rbac.liggitt.net/version": VERSION });
  assert.deepEqual(userSubject(a.user), { kind: "ServiceAccount", name: "sa1", namespace: "ns1" });
  assert.deepEqual(userSubject("bob@example.com"), {
    kind: "User",
    apiGroup: RBAC_GROUP,
    name: "bob@example.com",
  });
  assert.equal(sanitizeName("Bob@Example.com"), "bob-example-com");
  assert.equal(sanitizeLabel("oidc:Bob@x.io"), "oidc-bob-x-io");
});

Deno.test("flags: defaults, expand flags off, templates in name/labels/annotations, bad usage", () => {
  const d = parseRbacArgs(["--user", "Alice"]);
  assert.ok(d.kind === "run");
  assert.deepEqual(d.inputs, ["-"]);
  assert.equal(d.expandMultipleNames, true);
  assert.equal(d.expandMultipleNamespaces, true);
  assert.equal(d.name, "audit2rbac:alice");
  assert.equal(d.format, "yaml");
  const o = parseRbacArgs([
    "--user=alice",
    "-f",
    "a.log",
    "--filename",
    "b.log.gz",
    "--expand-multi-name=false",
    "--expand-multi-namespace=false",
    "--generate-name",
    "least:${user}",
    "--generate-labels",
    "team=x,who=${user}",
    "--generate-annotations",
    "",
    "--format",
    "json",
    "-n",
    "ns1",
  ]);
  assert.ok(o.kind === "run");
  assert.deepEqual(o.inputs, ["a.log", "b.log.gz"]);
  assert.equal(o.expandMultipleNames, false);
  assert.equal(o.expandMultipleNamespaces, false);
  assert.equal(o.name, "least:alice");
  assert.deepEqual(o.labels, { team: "x", who: "alice" });
  assert.equal(o.annotations, undefined);
  assert.equal(o.namespace, "ns1");
  assert.equal(o.format, "json");
  for (
    const bad of [
      [],
      ["--user", "a", "--serviceaccount", "n:s"],
      ["--serviceaccount", "sa1"],
      ["--user", "a", "--format", "xml"],
      ["--user", "a", "--unused"],
      ["--user", "a", "--expand-multi-name=no"],
      ["--user", "a", "extra"],
    ]
  ) {
    assert.equal(parseRbacArgs(bad).kind, "usage", bad.join(" "));
  }
});

Deno.test("rules: verbs joined, names merged, resources merged, sorted by group then text", () => {
  assert.deepEqual(
    compactRules([
      rule(["get"], "apps", ["deployments"]),
      rule(["get"], "", ["pods"], ["a"]),
      rule(["get"], "", ["pods"], ["b"]),
      rule(["list", "get", "watch"], "", ["services"]),
      rule(["list", "get", "watch"], "", ["endpoints"]),
      { verbs: ["get"], nonResourceURLs: ["/b", "/a"] },
    ]),
    [
      rule(["get", "list", "watch"], "", ["endpoints", "services"]),
      rule(["get"], "", ["pods"], ["a", "b"]),
      { verbs: ["get"], nonResourceURLs: ["/a"] },
      { verbs: ["get"], nonResourceURLs: ["/b"] },
      rule(["get"], "apps", ["deployments"]),
    ],
  );
});

Deno.test("rule matching: wildcards, subresources, names, non-resource prefixes", () => {
  const pod = res("get", "pods", { ns: "ns1", name: "p1" });
  const log = res("get", "pods", { ns: "ns1", name: "p1", sub: "log" });
  assert.ok(ruleAllows({ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }, log));
  assert.ok(ruleAllows(rule(["get"], "", ["*/log"]), log));
  assert.ok(!ruleAllows(rule(["get"], "", ["pods"]), log));
  assert.ok(ruleAllows(rule(["get"], "", ["pods"], ["p1"]), pod));
  assert.ok(!ruleAllows(rule(["get"], "", ["pods"], ["p2"]), pod));
  assert.ok(!ruleAllows(rule(["list"], "", ["pods"], ["p1"]), res("list", "pods", { ns: "ns1" })));
  assert.ok(ruleAllows({ verbs: ["get"], nonResourceURLs: ["/logs*"] }, url("get", "/logs/x")));
  assert.ok(!ruleAllows({ verbs: ["get"], nonResourceURLs: ["/logs"] }, url("get", "/logs/x")));
  assert.ok(!ruleAllows(rule(["get"], "", ["pods"]), url("get", "/pods")));
});

Deno.test("request order: non-resource, cluster-scoped, unnamed, list before get, then by attributes", () => {
  const rs = [
    res("get", "pods", { ns: "a", name: "x" }),
    res("get", "pods", { ns: "a" }),
    res("get", "nodes", { name: "n" }),
    res("get", "nodes"),
    res("list", "nodes"),
    url("get", "/z"),
  ];
  const sorted = [...rs].sort(compareRequests);
  assert.deepEqual(sorted, [rs[5], rs[4], rs[3], rs[2], rs[1], rs[0]]);
});

Deno.test("requests differing in API version are not widened together (audit2rbac compares every attribute)", () => {
  const v1 = {
    ...res("get", "deployments", { group: "apps", ns: "a", name: "d1" }),
    apiVersion: "v1",
  };
  const v2 = {
    ...res("get", "deployments", { group: "apps", ns: "b", name: "d2" }),
    apiVersion: "v1beta2",
  };
  const got = generateRbac([v1, v2], emptyObjects(), DEFAULT_GENERATE_OPTIONS);
  assert.equal(got.clusterRoles.length, 0);
  assert.deepEqual(got.roles.map((r) => r.metadata.namespace), ["a", "b"]);
});

Deno.test("generate (existing objects): a member of system:masters needs nothing; another user's grants do not count", () => {
  const admin = { ...res("delete", "nodes", { name: "n1" }), groups: ["system:masters"] };
  assert.deepEqual(generateRbac([admin], testExisting(), DEFAULT_GENERATE_OPTIONS), emptyObjects());
  const existing = testExisting();
  existing.roles.push({
    metadata: { name: "r", namespace: "ns1" },
    rules: [rule(["get"], "", ["pods"])],
  });
  existing.roleBindings.push({
    metadata: { name: "r", namespace: "ns1" },
    roleRef: { apiGroup: RBAC_GROUP, kind: "Role", name: "r" },
    subjects: [{ kind: "User", apiGroup: RBAC_GROUP, name: "alice" }],
  });
  const got = generateRbac(
    [res("get", "pods", { ns: "ns1", name: "p" })],
    existing,
    DEFAULT_GENERATE_OPTIONS,
  );
  assert.deepEqual(
    got,
    expectedObjects({ namespaced: { ns1: [rule(["get"], "", ["pods"], ["p"])] } }),
  );
  // Bound to bob instead, in ns1 only: ns1 is covered, ns2 is not (without expansion, which
  // would widen both requests to every namespace before asking what exists).
  existing.roleBindings[0].subjects = [{ kind: "User", apiGroup: RBAC_GROUP, name: "bob" }];
  const two = generateRbac(
    [res("get", "pods", { ns: "ns1", name: "p" }), res("get", "pods", { ns: "ns2", name: "q" })],
    existing,
    neither,
  );
  assert.deepEqual(
    two,
    expectedObjects({ namespaced: { ns2: [rule(["get"], "", ["pods"], ["q"])] } }),
  );
});
