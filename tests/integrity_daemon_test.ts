/**
 * A tamper-evident log sink in the real daemon: killed between checkpoints, restarted, and
 * `auditpipe verify` still proves the file, showing the restart.
 */
import assert from "node:assert/strict";
import { eventList, ROOT, startDaemon } from "./helpers/daemon.ts";
import { writeSigningKeys } from "./helpers/tmp.ts";

const json = { "content-type": "application/json" };

function events(from: number, n: number) {
  return Array.from({ length: n }, (_, k) => ({
    level: "Metadata",
    auditID: `ig-${String(from + k).padStart(5, "0")}`,
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods",
    verb: "create",
    user: { username: "alice" },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
    stageTimestamp: "2024-03-01T12:34:56.801234Z",
  }));
}

const CONFIG = `
sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: audit
    path: logs/audit.log
    integrity:
      signingKey: signing.key
      checkpointEvery: {events: 1000, interval: 1h}
server:
  listen: 127.0.0.1:0
`;

/** Posts `n` events in lists of 5; a blocking log sink answers once they are written. */
async function post(port: number, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i += 5) {
    const r = await fetch(`http://127.0.0.1:${port}/audit`, {
      method: "POST",
      headers: json,
      body: eventList(events(i, 5)),
    });
    await r.body?.cancel();
    assert.equal(r.status, 200);
  }
}

async function verify(dir: string, files: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "verify", "--public-key", `${dir}/signing.pub`, ...files],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, out: text.decode(out.stdout) + text.decode(out.stderr) };
}

Deno.test("integrity: SIGKILL between checkpoints, restart, more events: verify is OK and shows one restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-integrity-daemon-" });
  try {
    await writeSigningKeys(dir);
    const first = await startDaemon(() => CONFIG, { dir });
    const signs = await first.waitLog((r) => r.msg === "log sink signs checkpoints");
    assert.match(String(signs.publicKey), /^SHA256:/);
    await post(await first.webhookPort(), 0, 30);
    const opened = await first.waitLog((r) => r.msg === "log sink chain opened");
    assert.match(String(opened.chain), /^[0-9a-f]{16}$/);
    first.process.kill("SIGKILL");
    await first.exited();
    // Only the `open` record: the 30 lines after it are covered by no checkpoint yet.
    const before = await verify(dir, [`${dir}/logs/audit.log`]);
    assert.equal(before.code, 1, before.out);
    assert.match(before.out, /audit\.log:1-30: unverified/);

    const second = await startDaemon(() => CONFIG, { dir });
    await post(await second.webhookPort(), 30, 20);
    const reopened = await second.waitLog((r) => r.msg === "log sink chain opened");
    assert.equal(reopened.chain, opened.chain, "the same chain goes on");
    const metrics = await (await fetch(`http://127.0.0.1:${await second.opsPort()}/metrics`))
      .text();
    // The `open` record, which chained the 30 lines written before the crash.
    assert.match(metrics, /^auditpipe_sink_checkpoints_total\{sink="audit"\} 1$/m);
    assert.match(metrics, /^auditpipe_sink_chain_lines\{sink="audit"\} 30$/m);
    const { code } = await second.stop("SIGTERM");
    assert.equal(code, 0);

    const after = await verify(dir, [`${dir}/logs/audit.log`]);
    assert.equal(after.code, 0, after.out);
    assert.match(
      after.out,
      new RegExp(
        `^OK: 50 lines in 1 files, 3 checkpoints, chain ${opened.chain}, first \\S+, last \\S+$`,
        "m",
      ),
    );
    const restarts = after.out.split("\n").filter((l) => l.includes(": restart: "));
    assert.equal(restarts.length, 1, after.out);
    assert.match(
      restarts[0],
      /audit\.log:31: restart: .*lines 1-30 \(30\), written before a crash/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrity: the daemon signs under the least permissions 'auditpipe permissions' prints", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-integrity-perms-" });
  try {
    const keygen = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "keygen", "--out", `${dir}/keys`],
      stdout: "null",
    }).output();
    assert.equal(keygen.code, 0);
    const config = `sources:
  - type: stdin
sinks:
  - type: log
    path: logs/audit.log
    integrity: {signingKey: keys/auditpipe-signing.key}
`;
    await Deno.writeTextFile(`${dir}/pipeline.yaml`, config);
    const perms = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "permissions", "--config", `${dir}/pipeline.yaml`],
      stdout: "piped",
    }).output();
    const flags = new TextDecoder().decode(perms.stdout).trim().split("\n").at(-1)!.split(" ")
      .filter((f) => f.startsWith("--allow-"));
    assert.ok(flags.length > 0);
    const lines = events(0, 3).map((e) => JSON.stringify({ kind: "Event", ...e })).join("\n");
    const d = await startDaemon(() => config, {
      dir,
      permissions: flags,
      stdin: new TextEncoder().encode(lines + "\n"),
    });
    const { code } = await d.exited();
    assert.equal(code, 0, JSON.stringify(d.logs));
    assert.ok(!d.logs.some((r) => r.level === "error"), JSON.stringify(d.logs));
    const v = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "verify",
        "--public-key",
        `${dir}/keys/auditpipe-signing.pub`,
        `${dir}/logs/audit.log`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(v.code, 0, new TextDecoder().decode(v.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
