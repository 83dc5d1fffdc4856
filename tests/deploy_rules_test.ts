/**
 * deploy/prometheus-rules.yaml only names metrics and labels the daemon exports, and
 * docs/operations.md documents every metric it exports with its labels.
 */
import { parse } from "yaml";
import { assert } from "./helpers/assert.ts";
import { realLines, ROOT, startDaemon } from "./helpers/daemon.ts";

Deno.test("every metric and label the alerting rules use is on a running daemon's /metrics", async () => {
  const rules = parse(await Deno.readTextFile(`${ROOT}deploy/prometheus-rules.yaml`)) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const lines = (await realLines(3)).join("\n") + "\n";
  const d = await startDaemon((dir) => {
    Deno.writeTextFileSync(`${dir}/audit.log`, lines);
    return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
  - type: tail
    path: ${dir}/audit.log
    startAt: beginning
sinks:
  - type: log
    path: ${dir}/out.log
    mode: batch
  - type: log
    name: remote
    path: ${dir}/remote.log
    buffer: {type: disk, path: ${dir}/buffer}
server:
  listen: 127.0.0.1:0
`;
  });
  await fetch(`http://127.0.0.1:${await d.webhookPort()}/audit`, { method: "POST" })
    .then((r) => r.body?.cancel());
  const text = await (await fetch(`http://127.0.0.1:${await d.opsPort()}/metrics`)).text();
  await d.stop();
  await Deno.remove(d.dir, { recursive: true });
  const series = text.split("\n").filter((l) => l.startsWith("auditpipe_"));
  await checkDocumented(text);
  for (const { rules: group } of rules.groups) {
    for (const { alert, expr } of group) {
      const used: string[] = [];
      for (const name of new Set(expr.match(/auditpipe_[a-z_]+/g) ?? [])) {
        const found = series.filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
        assert(found.length > 0, `${alert}: ${name} is not exported`);
        used.push(...found);
        for (const m of expr.matchAll(new RegExp(`${name}\\{([a-z_]+)`, "g"))) {
          assert(found.some((l) => l.includes(`${m[1]}="`)), `${alert}: ${name} has no ${m[1]}`);
        }
      }
      if (used.length === 0) continue;
      const by = [...expr.matchAll(/by \(([^)]*)\)/g)]
        .flatMap((m) => m[1].split(",").map((l) => l.trim()))
        .filter((l) => l !== "instance");
      for (const label of by) {
        assert(used.some((l) => l.includes(`${label}="`)), `${alert}: no series has ${label}`);
      }
    }
  }
});

/** Every `auditpipe_` family on `/metrics` (but prom-client's own) has a row naming its labels. */
async function checkDocumented(metrics: string): Promise<void> {
  const doc = await Deno.readTextFile(`${ROOT}docs/operations.md`);
  const families = new Map<string, Set<string>>();
  for (const m of metrics.matchAll(/^# TYPE (auditpipe_[a-z_]+) (\w+)$/gm)) {
    if (/^auditpipe_(process|nodejs)_/.test(m[1])) continue;
    families.set(m[1], new Set());
  }
  for (const line of metrics.split("\n")) {
    const m = /^(auditpipe_[a-z_]+?)(?:_bucket|_sum|_count)?\{([^}]*)\}/.exec(line);
    const labels = m && families.get(m[1]);
    if (!labels) continue;
    for (const l of m[2].matchAll(/([a-z_]+)="/g)) if (l[1] !== "le") labels.add(l[1]);
  }
  assert(families.size > 10, `found ${families.size} families`);
  for (const [name, labels] of families) {
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${name}\``));
    assert(row, `docs/operations.md has no row for ${name}`);
    for (const l of labels) assert(row.includes(`\`${l}\``), `docs: ${name} lacks label ${l}`);
  }
}
