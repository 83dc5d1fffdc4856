/**
 * The repository stands alone: no file names a folder of a particular machine, and no test,
 * benchmark or script reaches outside the repository for data (test data comes from the
 * generator in tests/data/ or from tests/fixtures/).
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Folders that are not the project's own text: VCS data, caches, build output. */
const SKIP = new Set([".git", "node_modules", "bench/data", "dist", "audit-out"]);
const TEXT = /\.(ts|js|md|ya?ml|json|jsonc|sh|service|txt)$|^\.ci\/|(^|\/)[^./]+$/;

async function repoFiles(dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const path = dir === "" ? e.name : `${dir}/${e.name}`;
    if (SKIP.has(path)) continue;
    if (e.isDirectory) out.push(...await repoFiles(path));
    else if (e.isFile && TEXT.test(path)) out.push(path);
  }
  return out.sort();
}

/** Folders of build machines and developers' homes, and the old shared data folder. */
const MACHINE_PATH =
  /(?<![\w.~-])\/(?:work|home|Users|root|mnt|srv|builds?|workspace)\/[\w.-]+|shared\/testdata|[A-Z]:\\\\Users/;

/** `findings` of `pattern` in `files`, as `path:line: text`. */
async function grep(files: string[], pattern: RegExp): Promise<string[]> {
  const hits: string[] = [];
  for (const f of files) {
    const lines = (await Deno.readTextFile(join(ROOT, f))).split("\n");
    lines.forEach((l, i) => {
      if (pattern.test(l)) hits.push(`${f}:${i + 1}: ${l.trim().slice(0, 120)}`);
    });
  }
  return hits;
}

Deno.test("hermetic: no file names a folder of a particular machine or the old shared test data", async () => {
  const files = await repoFiles();
  assert.ok(files.includes("main.ts") && files.some((f) => f.startsWith("tests/")));
  assert.deepEqual(await grep(files, MACHINE_PATH), []);
});

Deno.test("hermetic: every file URL made in tests and benchmarks points inside the repository", async () => {
  const files = (await repoFiles()).filter((f) => /^(tests|bench)\/.*\.ts$/.test(f));
  const outside: string[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(join(ROOT, f));
    // Imports need no check: one that left the repository would not load in a fresh clone.
    for (const m of text.matchAll(/new URL\(\s*["'`]((?:\.\.?\/)+[^"'`$\s]*)["'`]/g)) {
      const target = relative(ROOT, resolve(ROOT, dirname(f), m[1]));
      if (target.startsWith("..")) outside.push(`${f}: ${m[1]}`);
    }
  }
  assert.deepEqual(outside, []);
});

Deno.test("hermetic: the machine-path check catches what the suite used to read", () => {
  // Assembled, so that this file holds no such path itself and needs no exemption.
  const shared = ["shared", "testdata", "real"].join("/");
  const planted = [
    `const REAL = "/${["work", shared].join("/")}/k8s.log";`,
    `  const i = url.indexOf('/${["home", "ci", "auditpipe"].join("/")}/');`,
    `new URL("../../${shared}/", import.meta.url)`,
  ];
  for (const line of planted) assert.match(line, MACHINE_PATH);
  for (const fine of ["/etc/auditpipe/pipeline.yaml", "/api/v1/namespaces", "/var/log/audit"]) {
    assert.doesNotMatch(fine, MACHINE_PATH);
  }
});
