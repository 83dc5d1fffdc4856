/**
 * What `auditpipe policy` reads: every shape of input (JSON lines, EventList, array,
 * pretty-printed events one after another), gzip files, several files in order with
 * standard input among them, and damaged input. Run in-process through runPolicyCli; files
 * that must be bytes on disk (gzip) are written to a temp folder.
 */
import assert from "node:assert/strict";
import { podEvent as ev, POLICY, policyCases, runPolicy as run } from "./helpers/policy_cli.ts";
import { withTempDir } from "./helpers/tmp.ts";

const events = policyCases();
const IDS = events.map((e) => e.auditID);
const lines = (es: unknown[]) => es.map((e) => JSON.stringify(e) + "\n").join("");
/** An event as an EventList item: without its type. */
const item = ({ kind: _k, apiVersion: _v, ...rest }: Record<string, unknown>) => rest;
const eventList = (es: unknown[], apiVersion = "audit.k8s.io/v1") => ({
  kind: "EventList",
  apiVersion,
  metadata: {},
  items: es.map((e) => item(e as Record<string, unknown>)),
});

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).bytes();
}

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-policy-input-", fn);

const idsOf = (stdout: string) => stdout.trimEnd().split("\n").map((l) => JSON.parse(l).auditID);

Deno.test("eval says kept: false for an omitted stage and for level None", async () => {
  const r = await run(["eval", "-p", "p.yaml", "a.log"], {
    "p.yaml": POLICY,
    "a.log": lines(events),
  });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => [o.auditID, o.level, o.kept]), [
    ["pod", "RequestResponse", true],
    ["secret", "Metadata", true],
    ["received", "RequestResponse", false],
    ["proxy", "None", false],
    ["health", "None", false],
  ]);
});

Deno.test("every input shape gives the same events", async () => {
  const pretty = (v: unknown) => JSON.stringify(v, null, 2);
  const shapes: Record<string, string> = {
    "JSON lines, CRLF and blank lines": events.map((e) => JSON.stringify(e)).join("\r\n\r\n"),
    "EventList on one line": JSON.stringify(eventList(events)) + "\n",
    "EventList pretty-printed": pretty(eventList(events)),
    "EventList with items before kind": JSON.stringify({
      items: eventList(events).items,
      kind: "EventList",
    }),
    "v1beta1 EventList of v1beta1 events": JSON.stringify(
      eventList(
        events.map((e) => ({ ...e, apiVersion: "audit.k8s.io/v1beta1" })),
        "audit.k8s.io/v1beta1",
      ),
    ),
    "JSON array": JSON.stringify(events),
    "JSON array pretty-printed": pretty(events),
    "pretty-printed events one after another": events.map(pretty).join("\n"),
    "events one after another on one line": events.map((e) => JSON.stringify(e)).join(" "),
    "EventLists one per line": lines([eventList(events.slice(0, 2)), eventList(events.slice(2))]),
    "Azure diagnostic log": JSON.stringify({
      records: events.map((e) => ({ properties: { log: JSON.stringify(e) + "\n" } })),
    }),
  };
  for (const [shape, text] of Object.entries(shapes)) {
    const r = await run(["eval", "-p", "p.yaml", "in"], { "p.yaml": POLICY, in: text });
    assert.equal(r.status, 0, `${shape}: ${r.stderr}`);
    assert.equal(r.stderr, "", shape);
    assert.deepEqual(idsOf(r.stdout), IDS, shape);
  }
});

Deno.test("several files are read in order: gzip ones, standard input and plain ones", async () => {
  await withDir(async (dir) => {
    // Named as kube-apiserver names a compressed backup, and one with no telling name.
    await Deno.writeFile(
      `${dir}/audit-2024-01-01T00-00-00.000.log.gz`,
      await gzip(lines(events.slice(0, 2))),
    );
    await Deno.writeFile(
      `${dir}/old`,
      await gzip(JSON.stringify(eventList(events.slice(2, 3)), null, 2)),
    );
    await Deno.writeTextFile(`${dir}/audit.log`, lines(events.slice(4)));
    const r = await run(
      [
        "eval",
        "-p",
        "p.yaml",
        `${dir}/audit-2024-01-01T00-00-00.000.log.gz`,
        `${dir}/old`,
        "-",
        `${dir}/audit.log`,
      ],
      { "p.yaml": POLICY },
      lines(events.slice(3, 4)),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(idsOf(r.stdout), IDS);
    const report = await run([
      "report",
      "--json",
      "-p",
      "p.yaml",
      `${dir}/old`,
      "-",
      `${dir}/audit.log`,
    ], {
      "p.yaml": POLICY,
    }, lines(events.slice(3, 4)));
    assert.equal(report.status, 0, report.stderr);
    assert.equal(JSON.parse(report.stdout).total.events, 3);
  });
});

Deno.test("apply writes EventList items as top-level lines, unchanged ones byte for byte", async () => {
  const kept = item(ev("keep", { requestObject: undefined }));
  const list = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${
    JSON.stringify(kept)
  }]}`;
  const r = await run(["apply", "-p", "p.yaml", "l.json"], { "p.yaml": POLICY, "l.json": list });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    `{"kind":"Event","apiVersion":"audit.k8s.io/v1",${JSON.stringify(kept).slice(1)}\n`,
  );
});

Deno.test("a bad item in a pretty-printed EventList is reported with its line and index", async () => {
  const list = eventList(events.slice(0, 2));
  (list.items as unknown[]).splice(1, 0, { auditID: "x", stage: "Panic" }, 42);
  const text = JSON.stringify(list, null, 2);
  const r = await run(["eval", "-p", "p.yaml", "l.json"], { "p.yaml": POLICY, "l.json": text });
  assert.equal(r.status, 1);
  assert.deepEqual(idsOf(r.stdout), ["pod", "secret"]);
  const badLine = text.split("\n").findIndex((l) => l.includes('"auditID": "x"')) - 1 + 1;
  assert.equal(
    r.stderr,
    `l.json:${badLine}: not an event: item 1: level undefined is not one of None, Metadata, Request, RequestResponse\n` +
      `l.json:${badLine + 4}: not an event: item 2: not an object\n`,
  );
});

Deno.test("a list of another kind is reported once and its items are not read as events", async () => {
  const podList = JSON.stringify({ kind: "PodList", apiVersion: "v1", items: events });
  const r = await run(["eval", "-p", "p.yaml", "pods.json", "a.log"], {
    "p.yaml": POLICY,
    "pods.json": podList,
    "a.log": lines(events.slice(0, 1)),
  });
  assert.equal(r.status, 1);
  assert.deepEqual(idsOf(r.stdout), ["pod"]);
  assert.equal(r.stderr, 'pods.json:1: not an event: kind "PodList" is not EventList or Event\n');
});

Deno.test("a cut line in a log is reported and the lines after it are read", async () => {
  const text = `${JSON.stringify(events[0])}\n${JSON.stringify(events[1]).slice(0, 50)}\n${
    lines(events.slice(2))
  }`;
  const r = await run(["eval", "-p", "p.yaml", "a.log"], { "p.yaml": POLICY, "a.log": text });
  assert.equal(r.status, 1);
  assert.deepEqual(idsOf(r.stdout), ["pod", "received", "proxy", "health"]);
  assert.equal(r.stderr, "a.log:2: not an event: a line ends inside a string\n");
});

Deno.test("a damaged gzip file is named, what it held before the damage is read, and the status is 2", async () => {
  await withDir(async (dir) => {
    const gz = await gzip(lines(Array.from({ length: 2000 }, (_, i) => ev(`e${i}`))));
    await Deno.writeFile(`${dir}/cut.gz`, gz.subarray(0, gz.length - 20));
    await Deno.writeTextFile(`${dir}/next.log`, lines(events.slice(0, 1)));
    const r = await run(["eval", "-p", "p.yaml", `${dir}/cut.gz`, `${dir}/next.log`], {
      "p.yaml": POLICY,
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`cannot read ${dir}/cut\\.gz to its end: `));
    const ids = idsOf(r.stdout);
    assert.equal(ids.at(-1), "pod", "the next file is read");
    assert.ok(ids.length > 1000, `${ids.length} events read before the damage`);
  });
});

Deno.test("a missing input among several fails before any output; - may be given once", async () => {
  const files = { "p.yaml": POLICY, "a.log": lines(events) };
  const missing = await run(["eval", "-p", "p.yaml", "a.log", "/nonexistent/b.log"], files);
  assert.equal(missing.status, 2);
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /cannot read \/nonexistent\/b\.log: /);
  const twice = await run(["eval", "-p", "p.yaml", "-", "a.log", "-"], files);
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /- \(standard input\) can be given only once/);
});

Deno.test("a progress bar is drawn on a terminal for a large input, and cleared", async () => {
  await withDir(async (dir) => {
    const one = JSON.stringify(ev("x", { requestObject: { data: "y".repeat(4000) } })) + "\n";
    await Deno.writeTextFile(`${dir}/big.log`, one.repeat(Math.ceil((16 << 20) / one.length)));
    const args = ["report", "-p", "p.yaml", `${dir}/big.log`];
    const tty = await run(args, { "p.yaml": POLICY }, "", true);
    assert.equal(tty.status, 0);
    const draws = tty.stderr.split("\r").slice(1);
    const percents = draws.slice(0, -1).map((d) =>
      Number(d.match(/^\[[# ]{30}\] (\d+)% \d+ events$/)![1])
    );
    assert.ok(percents.length > 10, `${percents.length} draws`);
    assert.deepEqual(percents, [...percents].sort((a, b) => a - b), "never goes back");
    assert.equal(percents.at(-1), 100);
    assert.equal(draws.at(-1), "\x1b[K", "cleared at the end");
    const pipe = await run(args, { "p.yaml": POLICY }, "", false);
    assert.equal(pipe.stderr, "");
  });
});

Deno.test("an event over the record limit is reported by size and the next ones are read", async () => {
  const { readEvents } = await import("../cli/policy/input.ts");
  const big = ev("big", { requestObject: { data: "z".repeat(1000) } });
  const text = lines([events[0], big]) + JSON.stringify([big, events[1]]);
  const rejected: string[] = [];
  const ids: string[] = [];
  const input = { name: "a.log", file: { stream: new Blob([text]).stream(), size: null } };
  for await (
    const batch of readEvents([input], {
      maxRecordBytes: 800,
      reject: (where, reason) => rejected.push(`${where}: ${reason}`),
      onReadError: (_, e) => assert.fail(e),
    })
  ) ids.push(...batch.map((e) => e.event.auditID));
  assert.deepEqual(ids, ["pod", "secret"]);
  const size = JSON.stringify(big).length;
  assert.deepEqual(rejected, [
    `a.log:2: ${size} bytes, more than the limit of 800`,
    `a.log:3: item 0: ${size} bytes, more than the limit of 800`,
  ]);
});

Deno.test("empty and blank inputs hold no events and are no error", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/empty.gz`, await gzip(""));
    const r = await run(["eval", "-p", "p.yaml", "empty", "blank", `${dir}/empty.gz`], {
      "p.yaml": POLICY,
      empty: "",
      blank: "\n \r\n\t\n",
    });
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, "", ""]);
  });
});
