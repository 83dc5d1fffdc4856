/**
 * `auditpipe rbac` on the generated kube-apiserver log (tests/data): for a user and for
 * service accounts, the RBAC it writes allows every request the subject made in the log (each
 * evaluated against the written objects plus the discovery role every user has) and none of a
 * list of requests the subject did not make.
 */
import assert from "node:assert/strict";
import type { PolicyCliIO } from "../cli/policy/io.ts";
import { type Attributes, eventToAttributes } from "../cli/rbac/attributes.ts";
import { RbacAuthorizer } from "../cli/rbac/authorize.ts";
import { VERB_EXPANSIONS } from "../cli/rbac/compact.ts";
import { mergeObjects, parseExisting } from "../cli/rbac/existing.ts";
import { discoveryObjects } from "../cli/rbac/generate.ts";
import { runRbacCli } from "../cli/rbac/main.ts";
import { eventCounts } from "../cli/rbac/select.ts";
import type { Event } from "../pipeline/core/event.ts";
import { apiserverLog } from "./data/apiserver_log.ts";

const LINES = apiserverLog({ events: 3000 });
const EVENTS: Event[] = LINES.map((l) => JSON.parse(l));
const enc = new TextEncoder();
const dec = new TextDecoder();

async function rbacJson(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const bytes = enc.encode(LINES.join("\n") + "\n");
  const io: PolicyCliIO = {
    readFile: (p) => Deno.readFile(p),
    openFile: () => Promise.reject(new Error("no files here")),
    openStdin: () => ({ stream: new Blob([bytes]).stream(), size: bytes.length }),
    stdout: { write: (b) => Promise.resolve(void out.push(b.slice())) },
    stderr: { write: (b) => Promise.resolve(void err.push(b.slice())) },
    stderrIsTerminal: false,
  };
  const code = await runRbacCli([...args, "--format", "json"], io);
  return {
    code,
    stdout: out.map((b) => dec.decode(b)).join(""),
    stderr: err.map((b) => dec.decode(b)).join(""),
  };
}

/** Requests the subject did not make: verbs and resources no event of theirs comes near. */
function notMade(user: string, groups: readonly string[]): Attributes[] {
  const base = {
    user,
    groups,
    resourceRequest: true,
    namespace: "",
    name: "",
    apiGroup: "",
    apiVersion: "v1",
    subresource: "",
    path: "",
  };
  return [
    { ...base, verb: "delete", resource: "secrets", namespace: "kube-system", name: "admin-token" },
    {
      ...base,
      verb: "create",
      resource: "clusterrolebindings",
      apiGroup: "rbac.authorization.k8s.io",
    },
    {
      ...base,
      verb: "escalate",
      resource: "clusterroles",
      apiGroup: "rbac.authorization.k8s.io",
      name: "cluster-admin",
    },
    { ...base, verb: "impersonate", resource: "users", name: "admin" },
    {
      ...base,
      verb: "create",
      resource: "pods",
      subresource: "exec",
      namespace: "default",
      name: "web-0",
    },
    { ...base, verb: "deletecollection", resource: "persistentvolumes" },
    {
      ...base,
      verb: "get",
      resource: "",
      resourceRequest: false,
      path: "/logs/kube-apiserver.log",
    },
    { ...base, verb: "post", resource: "", resourceRequest: false, path: "/api" },
  ];
}

/** Whether any request of the subject could have been widened into `a`. */
function near(a: Attributes, made: readonly Attributes[]): boolean {
  return made.some((m) => {
    if (m.resourceRequest !== a.resourceRequest) return false;
    if (!a.resourceRequest) return m.path === a.path && m.verb === a.verb;
    const verbs = [m.verb, ...(VERB_EXPANSIONS.get(m.verb) ?? [])];
    return verbs.includes(a.verb) && m.apiGroup === a.apiGroup && m.resource === a.resource &&
      m.subresource === a.subresource;
  });
}

for (
  const [flag, value] of [
    ["--user", "system:kube-scheduler"],
    ["--user", "system:node:node-a1"],
    ["--user", "admin"],
    ["--serviceaccount", "kube-system:deployment-controller"],
    ["--serviceaccount", "kube-system:namespace-controller"],
  ]
) {
  Deno.test(`generated log, ${flag} ${value}: the RBAC written allows every request made and none of those not made`, async () => {
    const user = flag === "--user" ? value : `system:serviceaccount:${value}`;
    const made = EVENTS.filter((e) => eventCounts(e, user, "")).map(eventToAttributes);
    assert.ok(made.length > 20, `${made.length} requests of ${user} in the generated log`);
    for (const expand of [[], ["--expand-multi-name=false", "--expand-multi-namespace=false"]]) {
      const r = await rbacJson([flag, value, ...expand]);
      assert.equal(r.code, 0, r.stderr);
      const written = parseExisting(r.stdout, "stdout");
      assert.ok(written.clusterRoles.length + written.roles.length > 0);
      const authz = new RbacAuthorizer(mergeObjects(discoveryObjects(), written));
      for (const a of made) {
        assert.ok(authz.allows(a), `${expand} not allowed: ${JSON.stringify(a)}`);
      }
      const groups = made[0].groups;
      for (const a of notMade(user, groups)) {
        assert.ok(!near(a, made), `the log has a request near ${JSON.stringify(a)}`);
        assert.ok(!authz.allows(a), `${expand} allowed but never made: ${JSON.stringify(a)}`);
      }
      // No one else is granted anything by the bindings.
      const other = new RbacAuthorizer(written);
      for (const a of made) assert.ok(!other.allows({ ...a, user: "someone-else", groups: [] }));
    }
  });
}
