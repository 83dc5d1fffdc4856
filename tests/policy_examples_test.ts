/**
 * The example policies over every real audit log in shared/testdata/real: the levels they
 * give are checked into tests/fixtures/policy/examples_real.json. Set UPDATE_FIXTURES=1 to
 * rewrite that file after a deliberate change, then review the diff.
 */
import assert from "node:assert/strict";
import { runPolicyCli } from "../cli/policy/main.ts";
import { parsePolicy } from "../policy/mod.ts";
import { run } from "./fixtures/policy/memory_io.ts";

const REAL = new URL("../../shared/testdata/real/", import.meta.url);
const EXAMPLES = new URL("../policy/examples/", import.meta.url);
const FIXTURE = new URL("./fixtures/policy/examples_real.json", import.meta.url);

type Counts = Record<string, number>;
/** policy file → data file → "level" and "rule" tallies. */
type Tally = Record<string, Record<string, { events: number; levels: Counts; rules: Counts }>>;

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

async function listFiles(dir: URL, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) {
      out.push(...await listFiles(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`));
    } else if (e.name !== "SOURCES.md") out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

const examples = (await Array.fromAsync(Deno.readDir(EXAMPLES))).map((e) => e.name).sort();

Deno.test("every example policy loads without warnings", async () => {
  assert.deepEqual(examples, ["gce.yaml", "talk-deep-objects.yaml", "talk-levels.yaml"]);
  for (const name of examples) {
    const { warnings } = parsePolicy(await Deno.readTextFile(new URL(name, EXAMPLES)), name);
    assert.deepEqual(warnings, [], name);
  }
});

Deno.test({
  name: "example policies give the checked-in levels on every real audit log",
  ignore: !(await exists(REAL)),
  async fn() {
    const files = await listFiles(REAL);
    const tally: Tally = {};
    for (const policy of examples) {
      tally[policy] = {};
      for (const file of files) {
        const r = await run(runPolicyCli, [
          "eval",
          "--policy",
          new URL(policy, EXAMPLES).pathname,
          new URL(file, REAL).pathname,
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
    // SOURCES.md counts 3 845 events over these files.
    for (const policy of examples) {
      const total = Object.values(tally[policy]).reduce((n, t) => n + t.events, 0);
      assert.equal(total, 3845, policy);
    }
  },
});
