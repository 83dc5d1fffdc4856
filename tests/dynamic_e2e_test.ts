/**
 * Dynamic AuditSinks end to end, with the real daemon: a webhook source, a static log sink
 * and a `dynamic.dir`. While a sender posts continuously, AuditSinks are added (one written
 * in place, one by an editor's write-then-rename), one is edited and the other deleted; each
 * receiver must get exactly the events its object asked for, at its level, while it existed,
 * and the log sink every event once.
 */
import assert from "node:assert/strict";
import { postAccepted, readJsonLines, ROOT, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { waitFor } from "./helpers/wait.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { needs } from "./helpers/external.ts";
import { createTestPki } from "./helpers/tls.ts";

/** What a receiver got of one event. */
interface Got {
  readonly auditID: string;
  readonly stage: string;
  readonly level: string;
  readonly requestObject: boolean;
  readonly responseObject: boolean;
}

/** A collector that keeps what it is sent of each event (the shared receiver keeps only IDs). */
function collector(
  tls?: { cert: string; key: string },
): { url: string; got: Got[]; close: () => Promise<void> } {
  const got: Got[] = [];
  const options = { hostname: "127.0.0.1", port: 0, onListen: () => {}, ...tls };
  const server = Deno.serve(options, async (req) => {
    const list = await req.json() as { items: Record<string, unknown>[] };
    for (const e of list.items) {
      got.push({
        auditID: e.auditID as string,
        stage: e.stage as string,
        level: e.level as string,
        requestObject: e.requestObject !== undefined,
        responseObject: e.responseObject !== undefined,
      });
    }
    return new Response("{}", { status: 200 });
  });
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}/audit`,
    got,
    close: () => server.shutdown(),
  };
}

const STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"] as const;

/** Request `r`'s events: two of each stage, at RequestResponse with both objects. */
function requestEvents(r: number): Record<string, unknown>[] {
  return numberedEvents(`r${String(r).padStart(4, "0")}`, 0, 8).map((e, i) => ({
    ...e,
    level: "RequestResponse",
    stage: STAGES[i % 4],
    requestObject: { kind: "Pod", metadata: { name: `p${r}` } },
    responseObject: { kind: "Pod", metadata: { name: `p${r}`, uid: "u" } },
  }));
}

function auditSink(
  name: string,
  url: string,
  level: string,
  stages: string[],
  caBundle?: string,
): string {
  return [
    "apiVersion: auditregistration.k8s.io/v1alpha1",
    "kind: AuditSink",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    "  policy:",
    `    level: ${level}`,
    `    stages: [${stages.join(", ")}]`,
    "  webhook:",
    "    throttle: {qps: 50, burst: 50}",
    "    clientConfig:",
    `      url: ${url}`,
    ...(caBundle === undefined ? [] : [`      caBundle: ${btoa(caBundle)}`]),
    "",
  ].join("\n");
}

/** A daemon config: a webhook source, a log sink `local` and AuditSinks from `dir`; `more` lines at the top level. */
function dynamicConfig(dir: string, more: string[] = []): string {
  return [
    "sources:",
    "  - type: webhook",
    "    listen: 127.0.0.1:0",
    "sinks:",
    "  - type: log",
    "    name: local",
    "    path: audit.log",
    "dynamic:",
    `  dir: ${dir}`,
    ...more,
    "",
  ].join("\n");
}

const requestOf = (auditID: string) => Number(auditID.slice(1, 5));

Deno.test("dynamic e2e: AuditSinks added, edited and deleted while events flow; each gets exactly its events at its level, the log sink all", async () => {
  const a = collector();
  const b = collector();
  const d = await startDaemon((dir) => {
    Deno.mkdirSync(`${dir}/sinks`);
    return dynamicConfig("sinks");
  });
  try {
    const port = await d.webhookPort();
    // Each request: when it was sent and when it was acknowledged, by the sender's clock.
    const sent: { start: number; acked: number }[] = [];
    let sending = true;
    const sender = (async () => {
      for (let r = 0; sending; r++) {
        const start = performance.now();
        await postAccepted(port, requestEvents(r));
        sent.push({ start, acked: performance.now() });
      }
    })();
    const reloaded = async (what: "added" | "replaced" | "removed", name: string) => {
      const rec = await d.waitLog((l) =>
        l.msg === "AuditSinks reloaded" && (l[what] as string[]).includes(`auditsink/${name}`)
      );
      return { rec, at: performance.now() };
    };
    const afterRequests = (n: number) => {
      const want = sent.length + n;
      return waitFor(`${n} more requests`, () => sent.length >= want);
    };
    const dir = `${d.dir}/sinks`;

    await afterRequests(5);
    const t0 = performance.now();
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      auditSink("team-a", a.url, "Metadata", ["ResponseComplete"]),
    );
    const addA = await reloaded("added", "team-a");
    await afterRequests(5);
    // An editor's save: a temporary file renamed over the name.
    const t1 = performance.now();
    await Deno.writeTextFile(
      `${dir}/.b.yaml.swp`,
      auditSink("team-b", b.url, "Request", ["RequestReceived", "ResponseComplete"]),
    );
    await Deno.rename(`${dir}/.b.yaml.swp`, `${dir}/b.yaml`);
    const addB = await reloaded("added", "team-b");
    assert.match(String((addB.rec.changed as string[])[0]), /policy\(auditsink Request at/);
    await afterRequests(5);
    const t2 = performance.now();
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      auditSink("team-a", a.url, "RequestResponse", ["RequestReceived"]),
    );
    const editA = await reloaded("replaced", "team-a");
    await afterRequests(5);
    const t3 = performance.now();
    await Deno.remove(`${dir}/b.yaml`);
    const delB = await reloaded("removed", "team-b");
    await afterRequests(5);
    sending = false;
    await sender;
    const { code } = await d.stop();
    assert.equal(code, 0);

    // Every request's events reached the log sink, once.
    const logged = (await readJsonLines(`${d.dir}/audit.log`)).map((e) => e.auditID as string);
    assert.equal(logged.length, sent.length * 8);
    assert.equal(new Set(logged).size, logged.length);

    for (const [name, got] of [["a", a.got], ["b", b.got]] as const) {
      const ids = got.map((g) => g.auditID);
      assert.equal(new Set(ids).size, ids.length, `no event twice at ${name}`);
    }
    // What each request's events became at a receiver: its version of the object, or none.
    const classify = (got: Got[], versions: Record<string, (g: Got) => boolean>) => {
      const per = new Map<number, Got[]>();
      for (const g of got) {
        per.set(requestOf(g.auditID), [...(per.get(requestOf(g.auditID)) ?? []), g]);
      }
      return sent.map((_, r) => {
        const mine = per.get(r) ?? [];
        if (mine.length === 0) return "none";
        const v = Object.entries(versions).find(([, ok]) => mine.every(ok));
        assert.ok(v, `request ${r} at a mix of versions: ${JSON.stringify(mine)}`);
        return v[0];
      });
    };
    const aV1 = (g: Got) =>
      g.stage === "ResponseComplete" && g.level === "Metadata" && !g.requestObject &&
      !g.responseObject;
    const aV2 = (g: Got) =>
      g.stage === "RequestReceived" && g.level === "RequestResponse" && g.requestObject &&
      g.responseObject;
    const bV1 = (g: Got) =>
      (g.stage === "RequestReceived" || g.stage === "ResponseComplete") &&
      g.level === "Request" && g.requestObject && !g.responseObject;
    const aSeq = classify(a.got, { v1: aV1, v2: aV2 });
    const bSeq = classify(b.got, { v1: bV1 });
    // Each request that went to a version got all of that version's stages (two events each).
    for (const [got, count] of [[a.got, 2], [b.got, 4]] as const) {
      const per = new Map<number, number>();
      for (const g of got) per.set(requestOf(g.auditID), (per.get(requestOf(g.auditID)) ?? 0) + 1);
      for (const [r, n] of per) assert.equal(n, count, `request ${r}: ${n} events`);
    }
    // Versions follow each other with no request left out between them.
    const shape = (seq: string[]) => seq.filter((s, i) => i === 0 || seq[i - 1] !== s).join(" ");
    assert.equal(shape(aSeq), "none v1 v2", aSeq.join(","));
    assert.equal(shape(bSeq), "none v1 none", bSeq.join(","));
    // The edited object's old branch drained before its new one wrote.
    assert.ok(a.got.findLastIndex(aV1) < a.got.findIndex(aV2), "v1 drained before v2 wrote");
    // And the switches happened between the file change and the reload being logged.
    const switchAt = (seq: string[], from: string, to: string) =>
      seq.findIndex((s, i) => i > 0 && seq[i - 1] === from && s === to);
    const within = (i: number, changedAt: number, loggedAt: number, what: string) => {
      assert.ok(
        sent[i - 1].start < loggedAt,
        `${what}: the last request before the switch started before the log`,
      );
      assert.ok(
        sent[i].acked > changedAt,
        `${what}: the first request after the switch was answered after the change`,
      );
    };
    within(switchAt(aSeq, "none", "v1"), t0, addA.at, "a added");
    within(switchAt(aSeq, "v1", "v2"), t2, editA.at, "a edited");
    within(switchAt(bSeq, "none", "v1"), t1, addB.at, "b added");
    within(switchAt(bSeq, "v1", "none"), t3, delB.at, "b deleted");
  } finally {
    await a.close();
    await b.close();
    await d.stop().catch(() => {});
  }
});

Deno.test("dynamic e2e: an invalid AuditSink is logged with file:line and skipped; the valid one runs; --check fails on it", async () => {
  await withTempDir("auditpipe-dynamic-", async (dir) => {
    const a = collector();
    try {
      await Deno.mkdir(`${dir}/sinks`);
      await Deno.writeTextFile(
        `${dir}/sinks/sinks.yaml`,
        auditSink("good", a.url, "Metadata", ["ResponseComplete"]) + "---\n" +
          auditSink("Bad_Name", a.url, "Metadata", ["ResponseComplete"]),
      );
      const config = dynamicConfig("sinks", ["server:", "  listen: 127.0.0.1:0"]);
      await Deno.writeTextFile(`${dir}/pipeline.yaml`, config);
      const check = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}main.ts`, "--config", `${dir}/pipeline.yaml`, "--check"],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(check.code, 2);
      const err = new TextDecoder().decode(check.stderr);
      assert.match(err, /sinks\.yaml:17:9 metadata\.name: Invalid value: "Bad_Name"/);

      const d = await startDaemon(() => config, { dir });
      try {
        const bad = await d.waitLog((l) => l.msg === "invalid AuditSink; skipped");
        assert.match(String(bad.problem), /sinks\.yaml:17:9 metadata\.name/);
        const good = await d.waitLog((l) =>
          l.msg === "sink configured" && l.sink === "auditsink/good"
        );
        assert.match(String(good.describe), /throttle\(50\/s, burst 50\) → webhook\(http:\/\/127/);
        await postAccepted(await d.webhookPort(), requestEvents(1));
        const m = await scrapeMetrics(await d.opsPort());
        assert.equal(m.get("auditpipe_auditsinks"), 1);
        assert.equal(m.get("auditpipe_auditsink_invalid_objects"), 1);
        // The valid object fixed, the invalid one removed: both counts follow.
        await Deno.writeTextFile(
          `${dir}/sinks/sinks.yaml`,
          auditSink("good", a.url, "Metadata", ["ResponseComplete"]),
        );
        await waitFor("the invalid count to drop", async () => {
          const now = await scrapeMetrics(await d.opsPort());
          return now.get("auditpipe_auditsink_invalid_objects") === 0 &&
            (now.get('auditpipe_auditsink_reload_total{result="success"}') ?? 0) >= 1;
        });
      } finally {
        assert.equal((await d.stop()).code, 0);
      }
      assert.deepEqual(a.got.map((g) => g.stage), ["ResponseComplete", "ResponseComplete"]);
    } finally {
      await a.close();
    }
  });
});

Deno.test("dynamic e2e: a missing dynamic.dir is a config error at its key", async () => {
  await withTempDir("auditpipe-dynamic-", async (dir) => {
    await Deno.writeTextFile(
      `${dir}/pipeline.yaml`,
      "sources:\n  - type: stdin\nsinks:\n  - type: stdout\ndynamic:\n  dir: nowhere\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "--config", `${dir}/pipeline.yaml`, "--check"],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(out.code, 2);
    assert.match(
      new TextDecoder().decode(out.stderr),
      /pipeline\.yaml:6:3 dynamic\.dir: folder not found: .*nowhere/,
    );
  });
});

Deno.test(
  needs(
    "openssl",
    "dynamic e2e: caBundle is the trust root: its CA's server is posted to, another CA's is refused",
  ),
  async () => {
    const pki = await createTestPki();
    const recv = collector({ cert: pki.serverCert, key: pki.serverKey });
    try {
      await withTempDir("auditpipe-dynamic-", async (dir) => {
        await Deno.mkdir(`${dir}/sinks`);
        await Deno.writeTextFile(
          `${dir}/sinks/sinks.yaml`,
          auditSink("trusted", recv.url, "Metadata", ["ResponseComplete"], pki.caCert) +
            "---\n" +
            auditSink("untrusted", recv.url, "Metadata", ["Panic"], pki.otherCaCert),
        );
        const d = await startDaemon(() => dynamicConfig("sinks", ["shutdownTimeout: 3s"]), { dir });
        try {
          await postAccepted(await d.webhookPort(), requestEvents(7));
        } finally {
          // Batches wait up to 30 s; stopping sends them now.
          await d.stop();
        }
        const failed = d.logs.find((l) =>
          l.msg === "webhook attempt failed" && l.sink === "auditsink/untrusted"
        );
        assert.match(String(failed?.error), /certificate|issuer|verify/i);
        // Only the trusted sink's stage (ResponseComplete) arrived.
        assert.deepEqual(recv.got.map((g) => g.stage), ["ResponseComplete", "ResponseComplete"]);
      });
    } finally {
      await recv.close();
      await pki.cleanup();
    }
  },
);

Deno.test("dynamic e2e: SIGHUP re-reads the folder a new config names, keeps unchanged AuditSinks, and watches the new folder, where a renamed file keeps its branch", async () => {
  const recv = collector();
  const config = (dir: string) => dynamicConfig(dir, ["logLevel: debug"]);
  const d = await startDaemon((dir) => {
    Deno.mkdirSync(`${dir}/one`);
    Deno.mkdirSync(`${dir}/two`);
    Deno.writeTextFileSync(`${dir}/one/x.yaml`, auditSink("x", recv.url, "None", []));
    Deno.writeTextFileSync(`${dir}/two/y.yaml`, auditSink("y", recv.url, "None", []));
    return config("one");
  });
  try {
    await d.waitLog((l) => l.msg === "sink configured" && l.sink === "auditsink/x");
    // Listening comes after the signal handlers are in place.
    await d.webhookPort();
    await Deno.writeTextFile(`${d.dir}/pipeline.yaml`, config("two"));
    d.process.kill("SIGHUP");
    const moved = await d.waitLog((l) => l.msg === "config reloaded");
    assert.deepEqual((moved.sinks as Record<string, string[]>).added, ["auditsink/y"]);
    assert.deepEqual((moved.sinks as Record<string, string[]>).removed, ["auditsink/x"]);
    d.process.kill("SIGHUP");
    const again = await d.waitLog((l) => l.msg === "config reloaded" && l !== moved);
    assert.deepEqual((again.sinks as Record<string, string[]>).kept, ["local", "auditsink/y"]);
    await Deno.writeTextFile(`${d.dir}/two/z.yaml`, auditSink("z", recv.url, "None", []));
    const added = await d.waitLog((l) => l.msg === "AuditSinks reloaded");
    assert.deepEqual(added.added, ["auditsink/z"]);
    // A file renamed, its object unchanged: the folder is read again and the branch kept.
    const quiet = d.logs.length;
    await Deno.rename(`${d.dir}/two/z.yaml`, `${d.dir}/two/renamed.yml`);
    await d.waitLog((l) =>
      d.logs.indexOf(l) >= quiet && l.msg === "AuditSink folder changed; no AuditSink changed"
    );
    assert.ok(!d.logs.slice(quiet).some((l) => l.msg === "AuditSinks reloaded"));
  } finally {
    assert.equal((await d.stop()).code, 0);
    await recv.close();
  }
});
