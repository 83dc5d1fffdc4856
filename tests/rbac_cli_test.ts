/**
 * `auditpipe rbac` end to end: golden YAML for a small hand-made log (a user impersonated
 * by an admin and refused; a service account logged at two stages), every input shape the
 * policy tools read giving the same output, --format json, --existing and --unused on
 * hand-made RBAC, and the real program as a subprocess (exit statuses, stdin, help).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import type { PolicyCliIO } from "../cli/policy/io.ts";
import { runRbacCli } from "../cli/rbac/main.ts";
import { VERSION } from "../cli/version.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const FIX = fileURLToPath(new URL("./fixtures/rbac/", import.meta.url));
const LOG = `${FIX}audit.log`;
const EXISTING = `${FIX}existing.yaml`;
/** The service account of the fixture log, over the whole log. */
const SA1_LOG = ["--serviceaccount", "ns1:sa1", "-f", LOG];
const dec = new TextDecoder();
const enc = new TextEncoder();

async function golden(name: string): Promise<string> {
  const text = await Deno.readTextFile(`${FIX}${name}`);
  return text.replaceAll(
    "audit2rbac.liggitt.net/version: VERSION",
    `audit2rbac.liggitt.net/version: ${VERSION}`,
  );
}

/** Runs the command in-process on real files (and `stdin` as standard input). */
async function run(args: string[], stdin = new Uint8Array()) {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const io: PolicyCliIO = {
    readFile: (p) => Deno.readFile(p),
    openFile: async (p) => ({ stream: (await Deno.open(p)).readable, size: null }),
    openStdin: () => ({ stream: new Blob([stdin]).stream(), size: stdin.length }),
    stdout: { write: (b) => Promise.resolve(void out.push(b.slice())) },
    stderr: { write: (b) => Promise.resolve(void err.push(b.slice())) },
    stderrIsTerminal: false,
  };
  const code = await runRbacCli(args, io);
  const text = (parts: Uint8Array[]) => parts.map((p) => dec.decode(p)).join("");
  return { code, stdout: text(out), stderr: text(err) };
}

for (
  const [name, args] of [
    ["alice.yaml", ["--user", "alice"]],
    ["sa1.yaml", ["--serviceaccount", "ns1:sa1"]],
    [
      "sa1-no-expand.yaml",
      [
        "--serviceaccount",
        "ns1:sa1",
        "--expand-multi-name=false",
        "--expand-multi-namespace=false",
      ],
    ],
  ] as const
) {
  Deno.test(`rbac ${args.join(" ")} writes ${name}`, async () => {
    const r = await run([...args, "-f", LOG]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, await golden(name));
    assert.match(r.stderr, /Loading events\.\.\.\n/);
    assert.match(r.stderr, /Complete!\n$/);
  });
}

Deno.test("every input shape gives the same objects: EventList, array, pretty-printed, gzip, v1beta1, stdin, several files", async () => {
  const lines = (await Deno.readTextFile(LOG)).trim().split("\n");
  const events = lines.map((l) => JSON.parse(l));
  const want = await golden("sa1.yaml");
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-" });
  try {
    const list = JSON.stringify({
      kind: "EventList",
      apiVersion: "audit.k8s.io/v1",
      metadata: {},
      items: events,
    });
    await Deno.writeTextFile(`${dir}/list.json`, list);
    await Deno.writeTextFile(`${dir}/array.json`, JSON.stringify(events, null, 2));
    const beta = events.map((e) => ({ ...e, apiVersion: "audit.k8s.io/v1beta1" }));
    await Deno.writeTextFile(
      `${dir}/beta.log`,
      beta.map((e) => JSON.stringify(e, null, 2)).join("\n"),
    );
    const gz = new Blob([lines.join("\n") + "\n"]).stream().pipeThrough(
      new CompressionStream("gzip"),
    );
    await Deno.writeFile(`${dir}/audit.log.1.gz`, gz);
    const half = Math.floor(lines.length / 2);
    await Deno.writeTextFile(`${dir}/a.log`, lines.slice(0, half).join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/b.log`, lines.slice(half).join("\n") + "\n");
    for (
      const files of [
        ["list.json"],
        ["array.json"],
        ["beta.log"],
        ["audit.log.1.gz"],
        ["a.log", "b.log"],
      ]
    ) {
      const r = await run([
        "--serviceaccount",
        "ns1:sa1",
        ...files.flatMap((f) => ["-f", `${dir}/${f}`]),
      ]);
      assert.equal(r.code, 0, `${files}: ${r.stderr}`);
      assert.equal(r.stdout, want, files.join(" "));
    }
    const viaStdin = await run(
      ["--serviceaccount", "ns1:sa1"],
      await Deno.readFile(`${dir}/audit.log.1.gz`),
    );
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.equal(viaStdin.stdout, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--format json writes one v1 List of the same objects", async () => {
  const r = await run([...SA1_LOG, "--format", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout);
  assert.equal(list.kind, "List");
  assert.equal(list.apiVersion, "v1");
  const docs = parseAllDocuments(await golden("sa1.yaml")).map((d) => d.toJS());
  assert.deepEqual(list.items, docs);
  assert.deepEqual(list.items.map((o: { kind: string }) => o.kind), [
    "Role",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "RoleBinding",
    "ClusterRoleBinding",
  ]);
});

Deno.test("-n keeps only requests on objects in that namespace", async () => {
  const r = await run([...SA1_LOG, "-n", "ns2"]);
  assert.equal(r.code, 0, r.stderr);
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => [d.kind, d.metadata.namespace]), [
    ["Role", "ns2"],
    ["RoleBinding", "ns2"],
  ]);
  assert.deepEqual(docs[0].rules, [
    { apiGroups: [""], resourceNames: ["web-1"], resources: ["pods"], verbs: ["get"] },
    { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch"] },
  ]);
});

Deno.test("--existing: only what the existing objects do not allow is written", async () => {
  const r = await run([...SA1_LOG, "--existing", EXISTING]);
  assert.equal(r.code, 0, r.stderr);
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => d.kind), [
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
  ]);
  // The leader configmap (Role), nodes and storage classes (ClusterRole) and deployments in
  // ns2 (the group's binding) are granted already.
  assert.deepEqual(docs[0].rules, [
    { apiGroups: [""], resourceNames: ["web-1"], resources: ["pods/log"], verbs: ["get"] },
    {
      apiGroups: [""],
      resourceNames: ["web-1"],
      resources: ["pods/status"],
      verbs: ["get", "patch", "update"],
    },
  ]);
  assert.deepEqual(docs[1].rules, [
    { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
    { nonResourceURLs: ["/metrics"], verbs: ["get"] },
  ]);
});

Deno.test("--existing that grants everything: nothing written, said on stderr, exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-" });
  try {
    await Deno.writeTextFile(
      `${dir}/admin.json`,
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            kind: "ClusterRole",
            metadata: { name: "all" },
            rules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }, {
              verbs: ["*"],
              nonResourceURLs: ["*"],
            }],
          },
          {
            kind: "ClusterRoleBinding",
            metadata: { name: "all" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "all" },
            subjects: [{ kind: "ServiceAccount", name: "sa1", namespace: "ns1" }],
          },
        ],
      }),
    );
    const r = await run([...SA1_LOG, "--existing", `${dir}/admin.json`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /every request is already allowed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--unused: every granted rule with the requests that used it; unused rules have 0", async () => {
  const unused = [...SA1_LOG, "--existing", EXISTING, "--unused"];
  const r = await run(unused);
  assert.equal(r.code, 0, r.stderr);
  const report = parse(r.stdout);
  assert.equal(report.user, "system:serviceaccount:ns1:sa1");
  // 15 requests, each logged at two stages.
  assert.equal(report.requests, 15);
  assert.deepEqual(
    report.rules.map((
      u: { binding: string; rule: number; requests: number },
    ) => [u.binding, u.rule, u.requests]),
    [
      ["ClusterRoleBinding/sa1-node-reader", 0, 2],
      ["ClusterRoleBinding/sa1-node-reader", 1, 1],
      ["RoleBinding/ns1/leader-election", 0, 1],
      ["RoleBinding/ns1/leader-election", 1, 2],
      ["RoleBinding/ns2/ns1-apps-editor", 0, 1],
      ["RoleBinding/ns2/ns1-apps-editor", 1, 0],
    ],
  );
  assert.equal(report.unusedRules, 1);
  assert.deepEqual(report.rules[5].grants, {
    verbs: ["get", "list"],
    apiGroups: [""],
    resources: ["secrets"],
  });
  // bob's binding is not the service account's.
  assert.ok(!r.stdout.includes("someone-else"));
  const json = await run([...unused, "--format", "json"]);
  assert.deepEqual(JSON.parse(json.stdout), report);
});

Deno.test("--existing problems name file:line:col and the field; other kinds are skipped with a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      "kind: ConfigMap\nmetadata: {name: x}\n---\nkind: ClusterRole\nmetadata:\n  name: r\nrules:\n- verbs: get\n",
    );
    const r = await run(["--user", "alice", "-f", LOG, "--existing", `${dir}/bad.yaml`]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /warning: .*bad\.yaml:1:1 document 1: kind "ConfigMap" is not RBAC: skipped/,
    );
    assert.match(r.stderr, /bad\.yaml:8:10 rules\[0\]\.verbs: must be a list of strings/);
    assert.equal(r.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("input items that are not events are reported; the rest is used and the status is 1", async () => {
  const text = await Deno.readTextFile(LOG);
  const r = await run(["--user", "alice"], enc.encode(`not json\n${text}`));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /<stdin>:1: not an event/);
  assert.equal(r.stdout, await golden("alice.yaml"));
});

/** Runs `main.ts rbac <args>` as a subprocess. */
async function spawn(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "rbac", ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(enc.encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the real program: objects on stdout, progress on stderr, from a file and from stdin (-)", async () => {
  const r = await spawn(["--user", "alice", "-f", LOG]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, await golden("alice.yaml"));
  assert.match(r.stderr, /^Opening audit source\.\.\.\nLoading events\.\.\.\n/);
  const s = await spawn(["--serviceaccount", "ns1:sa1", "-f", "-"], await Deno.readTextFile(LOG));
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, await golden("sa1.yaml"));
});

Deno.test("the real program exits 1 with a clear message when no event matched the subject", async () => {
  const r = await spawn(["--user", "carol", "-f", LOG]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /auditpipe rbac: no audit events matched user carol\n/);
  const ns = await spawn(["--user", "alice", "-n", "kube-system", "-f", LOG]);
  assert.equal(ns.code, 1);
  assert.match(ns.stderr, /no audit events matched user alice in namespace kube-system/);
});

Deno.test("the real program: bad usage and a missing file exit 2; --help exits 0", async () => {
  const none = await spawn(["-f", LOG]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--user or --serviceaccount is required/);
  const missing = await spawn(["--user", "alice", "-f", `${FIX}nope.log`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*nope\.log/);
  const help = await spawn(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--expand-multi-namespace/);
});

Deno.test("--unused warns of a binding of the subject whose role is missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-" });
  try {
    await Deno.writeTextFile(
      `${dir}/rbac.yaml`,
      [
        "kind: RoleBinding",
        "apiVersion: rbac.authorization.k8s.io/v1",
        "metadata: {name: gone, namespace: ns1}",
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deleted}",
        "subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}]",
      ].join("\n"),
    );
    const r = await run([
      "--user",
      "alice",
      "-f",
      LOG,
      "--existing",
      `${dir}/rbac.yaml`,
      "--unused",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: RoleBinding\/ns1\/gone: Role ns1\/deleted not found/);
    const report = parse(r.stdout);
    assert.deepEqual(report.rules, []);
    assert.deepEqual(report.dangling, ["RoleBinding/ns1/gone: Role ns1/deleted not found"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-f also takes an http:// URL, as audit2rbac's does; a status other than 200 exits 2 naming it", async () => {
  const log = await Deno.readFile(LOG);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/audit.log"
        ? new Response(log)
        : new Response("no such log", { status: 404 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const r = await run(["--user", "alice", "-f", `${base}/audit.log`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, await golden("alice.yaml"));
    const missing = await run(["--user", "alice", "-f", `${base}/gone.log`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /gone\.log: 404 Not Found/);
  } finally {
    await server.shutdown();
  }
});
