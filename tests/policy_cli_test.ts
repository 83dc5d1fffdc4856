/**
 * `policy eval | apply | report`, run in-process through runPolicyCli, plus one run of
 * cli/policy/main.ts as its own process.
 */
import assert from "node:assert/strict";
import { runPolicyCli } from "../cli/policy/main.ts";
import {
  podEvent,
  POLICY as BASE_POLICY,
  policyCases,
  runPolicy as run,
} from "./helpers/policy_cli.ts";

const POLICY = BASE_POLICY + `    omitManagedFields: true
  - level: Request
    verbs: [deletecollection]
`;

/** A pod creation with its response, whose request carries managed fields. */
function ev(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return podEvent(id, {
    responseStatus: { metadata: {}, code: 201 },
    requestObject: { kind: "Pod", metadata: { name: id, managedFields: [{ manager: "x" }] } },
    responseObject: { kind: "Pod", metadata: { name: id } },
    ...over,
  });
}

const events = policyCases(ev);
const lines = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
const files = { "p.yaml": POLICY, "audit.log": lines };

Deno.test("eval prints one decision per event in input order", async () => {
  const r = await run(["eval", "--policy", "p.yaml", "audit.log"], files);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, "");
  const out = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => [o.auditID, o.level, o.rule]), [
    ["pod", "RequestResponse", 2],
    ["secret", "Metadata", 1],
    ["received", "RequestResponse", 2],
    ["proxy", "None", 0],
    ["health", "None", null],
  ]);
  assert.deepEqual(Object.keys(out[0]), [
    "auditID",
    "stage",
    "level",
    "omitStages",
    "omitManagedFields",
    "rule",
    "kept",
  ]);
  assert.deepEqual(out[0].omitStages, ["RequestReceived"]);
  assert.equal(out[0].omitManagedFields, true);
});

Deno.test("eval reads stdin, and the words policy and - are optional", async () => {
  for (const args of [["policy", "eval", "-p", "p.yaml"], ["eval", "-p", "p.yaml", "-"]]) {
    const r = await run(args, files, lines);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trimEnd().split("\n").length, 5);
  }
});

Deno.test("eval reads a JSON array, an EventList and a pretty-printed event", async () => {
  const inputs = [
    JSON.stringify(events),
    JSON.stringify({
      kind: "EventList",
      apiVersion: "audit.k8s.io/v1",
      metadata: {},
      items: events,
    }),
  ];
  for (const input of inputs) {
    const r = await run(["eval", "-p", "p.yaml", "in.json"], { ...files, "in.json": input });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split("\n").length, 5);
  }
  const pretty = "\ufeff" + JSON.stringify(events[1], null, 2) + " ";
  const r = await run(["eval", "-p", "p.yaml", "one.json"], { ...files, "one.json": pretty });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).rule, 1);
});

Deno.test("eval unwraps events held as strings in an Azure diagnostic-log envelope", async () => {
  const azure = JSON.stringify({
    records: events.slice(0, 2).map((e) => ({
      category: "kube-audit",
      properties: { log: JSON.stringify(e) + "\n" },
    })),
  });
  const r = await run(["eval", "-p", "p.yaml", "az.json"], { ...files, "az.json": azure });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).auditID), [
    "pod",
    "secret",
  ]);
});

Deno.test("a bad event line is reported with its line number and the rest goes on", async () => {
  const input = `${JSON.stringify(events[0])}\nnot json\n\n{"kind":"Event","auditID":"x"}\n${
    JSON.stringify(events[1])
  }\n`;
  const r = await run(["eval", "-p", "p.yaml", "bad.log"], { ...files, "bad.log": input });
  assert.equal(r.status, 1);
  assert.equal(r.stdout.trimEnd().split("\n").length, 2);
  const errs = r.stderr.trimEnd().split("\n");
  assert.equal(errs.length, 2);
  assert.match(errs[0], /^bad\.log:2: not an event: /);
  assert.match(errs[1], /^bad\.log:4: not an event: .*level/);
});

Deno.test("a bad policy exits 2 listing every problem", async () => {
  const r = await run(["eval", "-p", "bad.yaml", "audit.log"], {
    ...files,
    "bad.yaml":
      "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n- verbs: [get]\n",
  });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /invalid policy:\nbad\.yaml:4:10 rules\[0\]\.level: Unsupported value/);
  assert.match(r.stderr, /\nbad\.yaml:5:3 rules\[1\]\.level: Required value/);
});

Deno.test("policy warnings go to stderr and do not stop evaluation", async () => {
  const r = await run(["eval", "-p", "w.yaml", "audit.log"], {
    ...files,
    "w.yaml": POLICY + "    colour: red\n",
  });
  assert.equal(r.status, 0);
  assert.match(r.stderr, /^warning: w\.yaml:14:5 rules\[3\]\.colour: unknown field "colour"/);
});

Deno.test("unreadable input and bad usage exit 2 with a message", async () => {
  const missing = await run(["eval", "-p", "p.yaml", "/nonexistent/audit.log"], files);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read \/nonexistent\/audit\.log: /);
  const noPolicy = await run(["eval", "audit.log"], files);
  assert.equal(noPolicy.status, 2);
  assert.match(noPolicy.stderr, /eval needs --policy FILE/);
  const policyMissing = await run(["eval", "-p", "/nonexistent/p.yaml"], files);
  assert.equal(policyMissing.status, 2);
  assert.match(policyMissing.stderr, /cannot read policy \/nonexistent\/p\.yaml/);
  assert.equal((await run(["frob", "-p", "p.yaml"], files)).status, 2);
  assert.equal((await run(["eval", "--bogus"], files)).status, 2);
  assert.equal((await run(["report", "-p", "p.yaml"], files)).status, 2);
});

Deno.test("--help prints usage and exits 0", async () => {
  const r = await run(["--help"]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: auditpipe policy <command>/);
  assert.equal((await run(["policy", "help"])).status, 0);
});

Deno.test("apply writes the kept events, lowered, as top-level JSON lines", async () => {
  const r = await run(["apply", "-p", "p.yaml", "audit.log"], files);
  assert.equal(r.status, 0);
  const out = r.stdout.trimEnd().split("\n");
  assert.equal(out.length, 2);
  const pod = JSON.parse(out[0]);
  assert.equal(pod.auditID, "pod");
  assert.deepEqual(
    pod.requestObject,
    { kind: "Pod", metadata: { name: "pod" } },
    "managedFields stripped",
  );
  assert.ok(
    out[0].startsWith('{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse"'),
  );
  const secret = JSON.parse(out[1]);
  assert.equal(secret.level, "Metadata");
  assert.equal("requestObject" in secret, false);
});

Deno.test("apply writes an unchanged event's line byte for byte", async () => {
  const line = JSON.stringify(ev("keep", { requestObject: undefined }));
  const r = await run(["apply", "-p", "p.yaml", "one.log"], { ...files, "one.log": `${line}\r\n` });
  assert.equal(r.stdout, `${line}\n`);
});

Deno.test("report counts events and bytes per rule, unmatched events and unused rules", async () => {
  const r = await run(["report", "-p", "p.yaml", "audit.log", "--json"], files);
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  const lens = events.map((e) => JSON.stringify(e).length + 1);
  assert.deepEqual(rep.rules.map((x: { events: number }) => x.events), [1, 1, 2, 0]);
  assert.equal(rep.rules[0].description, "users=system:kube-proxy");
  assert.equal(rep.rules[1].description, "resources=core/secrets");
  assert.deepEqual(rep.rules[2], {
    index: 2,
    level: "RequestResponse",
    description: "resources=core/* omitManagedFields=true",
    events: 2,
    kept: 1,
    omittedStage: 1,
    bytesIn: lens[0] + lens[2],
    bytesOut: lens[0] - JSON.stringify({ manager: "x" }).length - '"managedFields":[]'.length - 1,
  });
  assert.equal(rep.rules[1].bytesOut < rep.rules[1].bytesIn, true);
  assert.deepEqual(rep.noMatch, {
    events: 1,
    kept: 0,
    omittedStage: 0,
    bytesIn: lens[4],
    bytesOut: 0,
  });
  assert.equal(rep.total.events, 5);
  assert.equal(rep.total.bytesIn, lens.reduce((a, b) => a + b));
  assert.deepEqual(rep.neverMatched, [3]);
});

Deno.test("report prints an aligned table by default", async () => {
  const r = await run(["report", "-p", "p.yaml", "audit.log"], files);
  assert.equal(r.status, 0);
  const out = r.stdout.split("\n");
  assert.match(
    out[0],
    /^RULE\s+LEVEL\s+EVENTS\s+KEPT\s+STAGE-OMITTED\s+BYTES-IN\s+BYTES-OUT\s+CONDITIONS$/,
  );
  assert.match(out[1], /^0\s+None\s+1\s+0\s+0\s+\d+\s+0\s+users=system:kube-proxy$/);
  const col = out[0].indexOf("CONDITIONS");
  assert.equal(out[2].slice(col), "resources=core/secrets", "the last column lines up");
  assert.equal(out[4].slice(col), "verbs=deletecollection");
  assert.ok(out.includes("rules never matched: 3"));
  assert.ok(out.includes("events matching no rule: 1"));
});

Deno.test("no progress bar is drawn for small inputs, even on a terminal", async () => {
  const r = await run(["report", "-p", "p.yaml", "audit.log"], files, "", true);
  assert.equal(r.stderr, "");
});

Deno.test("cli/policy/main.ts runs as a program, on a gzip file and its real stdin", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/p.yaml`, POLICY);
    const half = lines.split("\n").slice(0, 3).join("\n") + "\n";
    const gz = new Blob([half]).stream().pipeThrough(new CompressionStream("gzip"));
    await Deno.writeFile(`${dir}/audit.log.1.gz`, await new Response(gz).bytes());
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../cli/policy/main.ts", import.meta.url).pathname,
        "policy",
        "eval",
        "--policy",
        `${dir}/p.yaml`,
        `${dir}/audit.log.1.gz`,
        "-",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    await stdin.write(new TextEncoder().encode(lines.slice(half.length)));
    await stdin.close();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const decisions = new TextDecoder().decode(out.stdout).trimEnd().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(decisions.map((d) => d.rule), [2, 1, 2, 0, null]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reader that closes stdout early (| head) stops the command quietly", async () => {
  let writes = 0;
  const err: Uint8Array[] = [];
  const status = await runPolicyCli(["eval", "-p", "p.yaml", "-"], {
    readFile: () => Promise.resolve(new TextEncoder().encode(POLICY)),
    openFile: () => Promise.reject(new Error("not used")),
    openStdin: () => ({ stream: new Blob([lines.repeat(2000)]).stream(), size: null }),
    stdout: {
      write: () => {
        writes++;
        return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
      },
    },
    stderr: { write: (b) => Promise.resolve(void err.push(b)) },
    stderrIsTerminal: false,
  });
  assert.equal(status, 0);
  assert.equal(writes, 1, "nothing more is written once the reader is gone");
  assert.deepEqual(err, []);
});
