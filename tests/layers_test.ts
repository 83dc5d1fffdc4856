/**
 * The direction of dependency, checked on every product file's imports: a core inside
 * `pipeline/core/` that everything may use; `policy/` and the sinks in `backends/` on the core
 * only; sources, stages and the builder (the rest of `pipeline/`) on top of them; `cli/` and
 * `main.ts` on top of everything. Tests and benchmarks are never imported by the product.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Layers, lowest first; each may import its own files and any layer listed in `uses`. */
const LAYERS: readonly { name: string; match: (path: string) => boolean; uses: string[] }[] = [
  { name: "core", match: (p) => p.startsWith("pipeline/core/"), uses: [] },
  { name: "policy", match: (p) => p.startsWith("policy/"), uses: ["core"] },
  { name: "backends", match: (p) => p.startsWith("backends/"), uses: ["core"] },
  {
    name: "pipeline",
    match: (p) => p.startsWith("pipeline/"),
    uses: ["core", "policy", "backends"],
  },
  {
    name: "cli",
    match: (p) => p.startsWith("cli/") || p === "main.ts",
    uses: ["core", "policy", "backends", "pipeline"],
  },
];

function layerOf(path: string): string | undefined {
  return LAYERS.find((l) => l.match(path))?.name;
}

/** Every relative import and re-export in `source`, static or dynamic. */
export function relativeImports(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.\.?\/[^"']+)["']/gm;
  for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

/** `[importer, imported]` pairs that break the direction, as repository-relative paths. */
export function violations(files: ReadonlyMap<string, string>): [string, string][] {
  const bad: [string, string][] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    if (from === undefined) continue;
    const allowed = new Set([from, ...LAYERS.find((l) => l.name === from)!.uses]);
    for (const spec of relativeImports(source)) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec)).replaceAll("\\", "/");
      const to = layerOf(target);
      if (to === undefined || !allowed.has(to)) bad.push([file, target]);
    }
  }
  return bad;
}

async function productFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const path = dir === "" ? e.name : `${dir}/${e.name}`;
      if (e.isDirectory && ["pipeline", "policy", "backends", "cli"].includes(path.split("/")[0])) {
        await walk(path);
      } else if (e.isFile && path.endsWith(".ts") && (dir !== "" || path === "main.ts")) {
        files.set(path, await Deno.readTextFile(join(ROOT, path)));
      }
    }
  }
  await walk("");
  return files;
}

Deno.test("layers: every product import goes down (core ← policy, backends ← pipeline ← cli)", async () => {
  const files = await productFiles();
  assert.ok(files.size > 50, `found ${files.size} product files`);
  assert.ok([...files.keys()].some((f) => f.startsWith("pipeline/core/")));
  assert.deepEqual(violations(files), []);
});

Deno.test("layers: the check catches a sink that imports the config, and core that imports a sink", () => {
  const planted = new Map([
    ["backends/log.ts", 'import type { SinkConfig } from "../pipeline/config/schema.ts";'],
    ["pipeline/core/stats.ts", 'export { x } from "../../backends/sink.ts";'],
    ["policy/load.ts", 'const m = await import("../pipeline/build.ts");'],
    [
      "pipeline/build.ts",
      'import "../tests/helpers/daemon.ts";\nimport { a } from "./core/ack.ts";',
    ],
    ["cli/run.ts", 'import { b } from "../backends/sink.ts";'],
  ]);
  assert.deepEqual(violations(planted), [
    ["backends/log.ts", "pipeline/config/schema.ts"],
    ["pipeline/core/stats.ts", "backends/sink.ts"],
    ["policy/load.ts", "pipeline/build.ts"],
    ["pipeline/build.ts", "tests/helpers/daemon.ts"],
  ]);
});

Deno.test("layers: policy/ is pure: no file system, network, process or clock", async () => {
  const files = await productFiles();
  const impure =
    /\bDeno\.|from "node:(fs|net|http|https|child_process|process)|Date\.now\(|new Date\(|performance\.now\(/;
  const bad = [...files].filter(([f, src]) => f.startsWith("policy/") && impure.test(src))
    .map(([f]) => f);
  assert.deepEqual(bad, []);
});
