/**
 * deploy/grafana-dashboard.json only queries metrics and labels a running daemon exports
 * (the daemon is configured so that every family appears: webhook and tail sources, a log
 * sink with a disk buffer and integrity), uses only variables it defines, draws every
 * documented auditpipe family somewhere, and is a well-formed Grafana dashboard.
 */
import assert from "node:assert/strict";
import { postAccepted, realEvents, realLines, ROOT, startDaemon } from "./helpers/daemon.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { writeSigningKeys } from "./helpers/tmp.ts";
import { waitFor } from "./helpers/wait.ts";

interface Target {
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
  annotations: { list: { expr?: string; datasource?: { uid: string } }[] };
}

const dashboard = JSON.parse(
  await Deno.readTextFile(`${ROOT}deploy/grafana-dashboard.json`),
) as Dashboard;

const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels);
const variables = dashboard.templating.list;
const queryOf = (v: Dashboard["templating"]["list"][number]) =>
  typeof v.query === "string" ? v.query : v.query.query;

/** Every PromQL expression with where it is: panel targets, annotations, variable queries. */
const exprs: { where: string; expr: string; legend: string }[] = [
  ...panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      where: `panel "${p.title}"`,
      expr: t.expr,
      legend: t.legendFormat ?? "",
    }))
  ),
  ...dashboard.annotations.list.flatMap((a) =>
    a.expr ? [{ where: "annotation", expr: a.expr, legend: "" }] : []
  ),
  ...variables.filter((v) => v.type === "query").map((v) => ({
    where: `variable $${v.name}`,
    expr: queryOf(v),
    legend: "",
  })),
];

/** Labels Prometheus adds when it scrapes: not on /metrics. */
const TARGET_LABELS = new Set(["instance", "job"]);

Deno.test("dashboard: a Grafana dashboard on the ${DS_PROMETHEUS} data source variable, panels on a 24-column grid", () => {
  assert.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, "schemaVersion ~39");
  assert.equal(dashboard.uid, "auditpipe");
  assert.ok(
    variables.some((v) => v.name === "DS_PROMETHEUS" && v.type === "datasource"),
    "a datasource variable DS_PROMETHEUS",
  );
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const taken = new Set<string>();
  for (const p of panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title}: within 24 columns`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!taken.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        taken.add(`${x},${y}`);
      }
    }
    if (p.type === "row") continue;
    assert.equal(p.datasource?.uid, "${DS_PROMETHEUS}", `${p.title}: data source`);
    assert.ok((p.targets ?? []).length > 0, `${p.title}: has a query`);
    for (const t of p.targets!) assert.equal(t.datasource?.uid, "${DS_PROMETHEUS}", p.title);
  }
  for (const a of dashboard.annotations.list) {
    if (a.expr) assert.equal(a.datasource?.uid, "${DS_PROMETHEUS}");
  }
});

Deno.test("dashboard: every $variable a query uses is defined", () => {
  const defined = new Set(variables.map((v) => v.name));
  for (const { where, expr } of exprs) {
    for (const m of expr.matchAll(/\$\{?(\w+)/g)) {
      if (m[1].startsWith("__")) continue; // $__rate_interval, $__range: Grafana's own
      assert.ok(defined.has(m[1]), `${where}: $${m[1]} is not a dashboard variable`);
    }
  }
});

Deno.test("dashboard: every metric and label it queries is on a running daemon's /metrics, and every family is drawn", async () => {
  const lines = (await realLines(5)).join("\n") + "\n";
  const d = await startDaemon((dir) => {
    Deno.writeTextFileSync(`${dir}/audit.log`, lines);
    return `
sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
  - type: tail
    name: tail
    path: ${dir}/audit.log
    startAt: beginning
    checkpointFile: ${dir}/tail.checkpoint
sinks:
  - type: log
    name: archive
    path: ${dir}/out.log
    integrity: {signingKey: signing.key, checkpointEvery: {events: 1, interval: 1s}}
    buffer: {type: disk, path: ${dir}/buffer}
  - type: stdout
    name: console
    mode: batch
server:
  listen: 127.0.0.1:0
`;
  }, {
    dir: await (async () => {
      const dir = await Deno.makeTempDir({ prefix: "auditpipe-dashboard-" });
      await writeSigningKeys(dir);
      return dir;
    })(),
  });
  let text: string;
  try {
    const ops = await d.opsPort();
    const webhook = await d.webhookPort();
    await postAccepted(webhook, await realEvents(5));
    // A request without a content type: a rejected input, so the reason label appears.
    await fetch(`http://127.0.0.1:${webhook}/audit`, { method: "POST" }).then((r) =>
      r.body?.cancel()
    );
    await waitFor(
      "the webhook's and the tail's events written",
      async () =>
        ((await scrapeMetrics(ops)).get('auditpipe_sink_written_total{sink="archive"}') ?? 0) >= 10,
    );
    text = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
  } finally {
    await d.stop();
    await Deno.remove(d.dir, { recursive: true });
  }
  const series = text.split("\n").filter((l) => l.startsWith("auditpipe_"));
  const seriesOf = (name: string) =>
    series.filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  const hasLabel = (found: string[], label: string) =>
    found.some((l) => new RegExp(`[{,]${label}="`).test(l));

  const used = new Set<string>();
  for (const { where, expr, legend } of exprs) {
    const found: string[] = [];
    for (const name of new Set(expr.match(/auditpipe_[a-z0-9_]+/g) ?? [])) {
      const s = seriesOf(name);
      assert.ok(s.length > 0, `${where}: ${name} is not exported`);
      found.push(...s);
      used.add(name.replace(/_(bucket|sum|count)$/, ""));
      for (const sel of expr.matchAll(new RegExp(`${name}\\{([^}]*)\\}`, "g"))) {
        for (const l of sel[1].matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) {
          if (TARGET_LABELS.has(l[1])) continue;
          assert.ok(hasLabel(s, l[1]), `${where}: ${name} has no label ${l[1]}`);
        }
      }
    }
    const by = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)]
      .flatMap((m) => m[1].split(",").map((l) => l.trim()))
      .filter((l) => l !== "" && !TARGET_LABELS.has(l));
    for (const label of by) assert.ok(hasLabel(found, label), `${where}: no series has ${label}`);
    for (const m of expr.matchAll(/label_values\([^,]*,\s*(\w+)\)/g)) {
      if (!TARGET_LABELS.has(m[1])) assert.ok(hasLabel(found, m[1]), `${where}: no ${m[1]}`);
    }
    // A legend names labels the query keeps: those it aggregates by, or the series' own.
    const aggregates = /\b(sum|max|min|avg|count)\b/.test(expr);
    for (const m of legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
      if (TARGET_LABELS.has(m[1])) continue;
      assert.ok(
        aggregates ? by.includes(m[1]) : hasLabel(found, m[1]),
        `${where}: the legend's {{${m[1]}}} is not a label of the query's result`,
      );
    }
  }
  // Every documented auditpipe family (prom-client's process metrics aside) is on a panel.
  const families = [...text.matchAll(/^# TYPE (auditpipe_[a-z_]+) /gm)].map((m) => m[1])
    .filter((n) => !/^auditpipe_(process|nodejs)_/.test(n));
  assert.ok(families.length > 20, `found ${families.length} families`);
  assert.deepEqual(families.filter((f) => !used.has(f)), [], "families no panel draws");
});
