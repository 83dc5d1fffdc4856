/**
 * Start-up: `main.ts` loads the daemon's modules only to run the daemon. `--version`,
 * `--help` and the tools (`policy`, `rbac`, `verify`, ...) load `main.ts`'s static imports
 * and their own, never the pipeline, its HTTP server, NATS or metrics: what `deno info`
 * reports as the static module graph (dynamic imports are loaded only when reached). The
 * daemon itself loads only what its config uses: a stdin → stdout daemon runs with hono,
 * prom-client, the NATS client and the disk buffer replaced by modules that throw.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startDaemon } from "./helpers/daemon.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { waitFor } from "./helpers/wait.ts";

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

Deno.test("main.ts --version and --help load no Node.js built-in module (node:util's option parser)", () => {
  const builtins = [...staticGraph(["main.ts"])].filter((s) => s.startsWith("node:"));
  assert.deepEqual(builtins, []);
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

/**
 * Writes an import map into `dir` in which hono, prom-client, the NATS client and the disk
 * buffer's modules (less those named in `keep`) are replaced by a module that throws when
 * evaluated (and `hono/…`, `diskbuffer/…` by files that do not exist); returns the Deno flags
 * that use it. A daemon that loads any of them fails there.
 */
async function guardFlags(dir: string, keep: string[] = []): Promise<string[]> {
  const stub = `${dir}/not_to_be_loaded.js`;
  await Deno.writeTextFile(
    stub,
    'throw new Error("auditpipe test: a module not to be loaded was loaded");\n',
  );
  const missing = `file://${dir}/not-to-be-loaded/`;
  const declared = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    imports: Record<string, string>;
  };
  const replaced: Record<string, string> = {
    "hono": `file://${stub}`,
    "hono/": missing,
    "prom-client": `file://${stub}`,
    "@nats-io/transport-node": `file://${stub}`,
    "@nats-io/jetstream": `file://${stub}`,
    [new URL("pipeline/disk_lane.ts", ROOT).href]: `file://${stub}`,
    [new URL("pipeline/diskbuffer/", ROOT).href]: missing,
  };
  for (const k of keep) delete replaced[k];
  const imports = { ...declared.imports, ...replaced };
  await Deno.writeTextFile(`${dir}/import_map.json`, JSON.stringify({ imports }));
  // Flags before the entry: an import map on top of -A.
  return ["-A", "--import-map", `${dir}/import_map.json`];
}

/** Runs the daemon on `config` under {@linkcode guardFlags}, one event on stdin. */
async function runGuarded(
  config: string,
): Promise<{ code: number; stdout: string; logs: Record<string, unknown>[] }> {
  return await withTempDir("auditpipe-startup-", async (dir) => {
    const d = await startDaemon(() => config, {
      dir,
      permissions: await guardFlags(dir),
      stdin: new TextEncoder().encode(JSON.stringify(EVENT) + "\n"),
    });
    const { code, stdout } = await d.exited();
    return { code, stdout, logs: d.logs };
  });
}

const EVENT = {
  kind: "Event",
  apiVersion: "audit.k8s.io/v1",
  level: "Metadata",
  auditID: "00000000-0000-0000-0000-000000000001",
  stage: "ResponseComplete",
  requestURI: "/api/v1/namespaces",
  verb: "list",
  user: { username: "admin" },
  requestReceivedTimestamp: "2024-05-14T09:00:00.000000Z",
  stageTimestamp: "2024-05-14T09:00:00.001000Z",
};

const STDIN_TO_STDOUT = "sources:\n  - type: stdin\nsinks:\n  - type: stdout\n";

Deno.test("a stdin → stdout daemon runs without loading hono, prom-client, the NATS client or the disk buffer", async () => {
  const { code, stdout, logs } = await runGuarded(STDIN_TO_STDOUT);
  assert.equal(code, 0, JSON.stringify(logs));
  assert.deepEqual(JSON.parse(stdout), EVENT);
});

// The guard itself: each of these configs loads one of the replaced modules, and fails.
for (
  const [what, config] of [
    ["an ops server (hono, prom-client)", `${STDIN_TO_STDOUT}server:\n  listen: 127.0.0.1:0\n`],
    ["a disk buffer", `${STDIN_TO_STDOUT}    buffer: {type: disk, path: buffer}\n`],
    ["a NATS sink", `${STDIN_TO_STDOUT}  - type: nats\n    subject: audit\n`],
    [
      "a webhook source (hono)",
      "sources:\n  - type: webhook\n    listen: 127.0.0.1:0\nsinks:\n  - type: stdout\n",
    ],
  ]
) {
  Deno.test(`the module guard sees a daemon with ${what} load what it replaced`, async () => {
    const { code, logs } = await runGuarded(config);
    assert.notEqual(code, 0);
    // The stub throws when evaluated; a named import from it fails before, when linked.
    assert.match(JSON.stringify(logs), /not.to.be.loaded|does not provide an export named/);
  });
}

Deno.test("the ops server serves /healthz without prom-client; the first /metrics scrape loads it", async () => {
  await withTempDir("auditpipe-startup-", async (dir) => {
    await Deno.writeTextFile(`${dir}/audit.log`, JSON.stringify(EVENT) + "\n");
    const config = `sources:
  - type: tail
    path: ${dir}/audit.log
    startAt: beginning
sinks:
  - type: log
    path: ${dir}/out.log
server:
  listen: 127.0.0.1:0
`;
    // hono stays; prom-client is the stub, so a scrape can tell when it was loaded.
    const d = await startDaemon(() => config, {
      dir,
      permissions: await guardFlags(dir, ["hono", "hono/"]),
    });
    const port = await d.opsPort();
    const healthz = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(healthz.status, 200);
    await healthz.body?.cancel();
    assert.ok(!d.logs.some((r) => String(r.msg).includes("metrics library")));
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 500);
    await metrics.body?.cancel();
    await d.waitLog((r) => r.msg === "cannot load the metrics library; /metrics answers 500");
    // Events flow all the same.
    const written = () => Deno.readTextFile(`${dir}/out.log`).catch(() => "");
    await waitFor("the event in out.log", async () => (await written()).includes("\n"));
    assert.deepEqual(JSON.parse(await written()), EVENT);
    const { code } = await d.stop("SIGTERM");
    assert.equal(code, 0, JSON.stringify(d.logs));
  });
});
