/**
 * The example policies over every file of the generated corpus (tests/data/: a kube-apiserver
 * audit.log, v1beta1 logs, rule fixtures with bodies, AKS envelopes, pretty-printed events
 * with a BOM): the levels they give are checked into
 * tests/fixtures/policy/examples_generated.json. Set UPDATE_FIXTURES=1 to rewrite that file
 * after a deliberate change (to a policy or to the generator), then review the diff.
 */
import assert from "node:assert/strict";
import { runPolicyCli } from "../cli/policy/main.ts";
import { parsePolicy } from "../policy/mod.ts";
import { run } from "./fixtures/policy/memory_io.ts";
import { corpusFiles, writeCorpus } from "./data/corpus.ts";

const EXAMPLES = new URL("../policy/examples/", import.meta.url);
const FIXTURE = new URL("./fixtures/policy/examples_generated.json", import.meta.url);

type Counts = Record<string, number>;
/** policy file → data file → "level" and "rule" tallies. */
type Tally = Record<string, Record<string, { events: number; levels: Counts; rules: Counts }>>;

const examples = (await Array.fromAsync(Deno.readDir(EXAMPLES))).map((e) => e.name).sort();

Deno.test("every example policy loads without warnings", async () => {
  assert.deepEqual(examples, ["gce.yaml", "talk-deep-objects.yaml", "talk-levels.yaml"]);
  for (const name of examples) {
    const { warnings } = parsePolicy(await Deno.readTextFile(new URL(name, EXAMPLES)), name);
    assert.deepEqual(warnings, [], name);
  }
});

Deno.test("example policies give the checked-in levels on every file of the generated corpus", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-corpus-" });
  try {
    const files = await writeCorpus(dir);
    const tally: Tally = {};
    for (const policy of examples) {
      tally[policy] = {};
      for (const file of files) {
        const r = await run(runPolicyCli, [
          "eval",
          "--policy",
          new URL(policy, EXAMPLES).pathname,
          `${dir}/${file}`,
        ]);
        assert.equal(r.status, 0, `${policy} ${file}: ${r.stderr}`);
        assert.equal(r.stderr, "", `${policy} ${file}`);
        const t = { events: 0, levels: {} as Counts, rules: {} as Counts };
        for (const line of r.stdout.split("\n")) {
          if (line === "") continue;
          const { level, rule } = JSON.parse(line);
          t.events++;
          t.levels[level] = (t.levels[level] ?? 0) + 1;
          const key = rule === null ? "none" : String(rule);
          t.rules[key] = (t.rules[key] ?? 0) + 1;
        }
        tally[policy][file] = t;
      }
    }
    if (Deno.env.get("UPDATE_FIXTURES") === "1") {
      await Deno.writeTextFile(FIXTURE, JSON.stringify(tally, null, 2) + "\n");
    }
    const want: Tally = JSON.parse(await Deno.readTextFile(FIXTURE));
    assert.deepEqual(tally, want);
    // Every event of every file is evaluated, envelopes and pretty-printed ones included.
    const total = corpusEvents();
    for (const policy of examples) {
      const n = Object.values(tally[policy]).reduce((n, t) => n + t.events, 0);
      assert.equal(n, total, policy);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Events in the corpus, counted independently of the CLI: lines, records, documents. */
function corpusEvents(): number {
  let n = 0;
  for (const f of corpusFiles()) {
    const text = f.text.replace(/^\ufeff/, "").trim();
    if (text.startsWith("{\n")) {
      const doc = JSON.parse(text);
      n += Array.isArray(doc.records) ? doc.records.length : 1;
    } else if (text.startsWith('{"records"')) n += JSON.parse(text).records.length;
    else n += text.split("\n").length;
  }
  return n;
}
