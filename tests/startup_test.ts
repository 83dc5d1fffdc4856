/**
 * Start-up: `main.ts` loads the daemon's modules only to run the daemon. `--version`,
 * `--help` and the tools (`policy`, `rbac`, `verify`, ...) load `main.ts`'s static imports
 * and their own, never the pipeline, its HTTP server, NATS or metrics: what `deno info`
 * reports as the static module graph (dynamic imports are loaded only when reached).
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
}

const info = await (async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("main.ts", ROOT).pathname],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).output();
  assert.ok(out.success, "deno info failed");
  const modules = (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] })
    .modules;
  return new Map(modules.map((m) => [m.specifier, m]));
})();

/** Every module loaded before anything runs when `entries` are imported (static imports). */
function staticGraph(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = entries.map((e) => new URL(e, ROOT).href);
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of info.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return seen;
}

/** What only the daemon needs: its pipeline, HTTP server, NATS client and metrics. */
function daemonModules(graph: Set<string>): string[] {
  const root = ROOT.href;
  return [...graph].filter((s) =>
    s === `${root}cli/run.ts` || s === `${root}pipeline/build.ts` ||
    s.startsWith(`${root}pipeline/ingest/`) || s.startsWith(`${root}pipeline/stages/`) ||
    /hono|@nats-io|prom-client/.test(s)
  );
}

Deno.test("main.ts --version and --help load none of the daemon's modules", () => {
  const graph = staticGraph(["main.ts"]);
  assert.deepEqual(daemonModules(graph), []);
  // Only the command line itself.
  assert.ok(graph.size <= 10, `main.ts loads ${graph.size} modules: ${[...graph].join(", ")}`);
});

for (const tool of ["cli/policy/main.ts", "cli/rbac/main.ts", "cli/verify/main.ts"]) {
  Deno.test(`the ${tool.split("/")[1]} tool loads none of the daemon's modules`, () => {
    assert.deepEqual(daemonModules(staticGraph(["main.ts", tool])), []);
  });
}

Deno.test("running the daemon loads its modules (the graph test sees them)", () => {
  const graph = staticGraph(["main.ts", "cli/run.ts"]);
  assert.ok(daemonModules(graph).length > 10);
});

Deno.test("main.ts --version prints the version and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", new URL("main.ts", ROOT).pathname, "--version"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^auditpipe \S+\n$/);
});
