/**
 * Progress bars of the long CLI jobs besides the policy tools: `auditpipe verify` on a big
 * signed log and `auditpipe buffer inspect --dump` on a big disk buffer draw one on stderr
 * when it is a terminal (a real one: tmux), reaching 100% and cleared at the end, and print
 * nothing of it when stderr is not a terminal.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createLogSink } from "../backends/log.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { PROGRESS_MIN_BYTES } from "../cli/progress.ts";
import { eventRecord } from "./diskbuffer_helpers.ts";
import { testEnvelope } from "./helpers/events.ts";
import { needs } from "./helpers/external.ts";
import { ROOT } from "./helpers/daemon.ts";
import { shQuote, startTerminal } from "./helpers/tmux.ts";

const PAD = 8000;
/** Events enough for a little more than the bar's threshold. */
const EVENTS = Math.ceil(PROGRESS_MIN_BYTES / PAD) + 64;

/** A signed log of EVENTS events (and its public key), and a disk buffer holding as many. */
async function bigInputs(dir: string): Promise<void> {
  const keys = generateKeyPairSync("ed25519");
  await Deno.writeTextFile(
    `${dir}/signing.pub`,
    keys.publicKey.export({ type: "spki", format: "pem" }) as string,
  );
  const sink = await createLogSink(
    {
      path: `${dir}/audit.log`,
      format: "json",
      fsync: "never",
      rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false },
      integrity: { checkpointEvery: { events: 1000, interval: 0 } },
    },
    {
      name: "audit",
      log: silentLogger,
      clock: new FakeClock(),
      stats: new SinkStats("audit"),
      signal: new AbortController().signal,
    },
    { checkInterval: 0 },
    keys.privateKey,
  );
  const pad = "x".repeat(PAD);
  for (let i = 0; i < EVENTS; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(EVENTS, i + 100); j++) {
      batch.push(testEnvelope(`id-${j}`, { annotations: { pad } }));
    }
    await sink.write(batch);
  }
  await sink.close();
  const buf = await DiskBuffer.open({ path: `${dir}/buffer`, maxBytes: 1 << 26 });
  for (let i = 0; i < EVENTS; i += 100) {
    await buf.append(
      Array.from({ length: Math.min(100, EVENTS - i) }, (_, k) => eventRecord(i + k, PAD)),
    );
  }
  await buf.close();
}

const auditpipe = (...args: string[]) =>
  [Deno.execPath(), "run", "-A", `${ROOT}main.ts`, ...args].map(shQuote).join(" ");

/**
 * The percentages of the bars drawn in `text` (what the pane got: Deno's own escape
 * sequences and the summary on stderr around them), which must end cleared.
 */
function bars(text: string, unit: string): number[] {
  const draws = [...text.matchAll(new RegExp(`\\r\\[[# ]{30}\\] (\\d+)% \\d+ ${unit}`, "g"))];
  assert.ok(draws.length > 10, `${draws.length} draws in ${JSON.stringify(text.slice(0, 300))}`);
  assert.equal(text.split("\r[").length - 1, draws.length, "every draw is a whole bar");
  const last = draws.at(-1)!;
  assert.ok(
    text.slice(last.index! + last[0].length).startsWith("\r\x1b[K"),
    "cleared at the end",
  );
  return draws.map((m) => Number(m[1]));
}

Deno.test(
  needs(
    "tmux",
    "progress: verify and buffer inspect --dump draw a bar on a terminal's stderr, to 100%, then clear it",
  ),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-progress-" });
    try {
      await bigInputs(dir);
      const term = await startTerminal(
        dir,
        [
          `cd ${shQuote(dir)}`,
          `${auditpipe("verify", "--public-key", "signing.pub", "audit.log")} > verify.out`,
          "printf '\\nVERIFY-DONE\\n'",
          `${auditpipe("buffer", "inspect", "buffer", "--dump")} > dump.out`,
          "printf '\\nDUMP-DONE\\n'",
          "exec sleep 600",
        ].join("\n"),
      );
      try {
        await term.waitScreen("both commands", (s) => s.includes("DUMP-DONE"), 120_000);
      } finally {
        await term.close();
      }
      const written = await term.written();
      const [verifyPart, rest] = written.split("VERIFY-DONE");
      const dumpPart = rest.split("DUMP-DONE")[0];
      for (const [part, unit] of [[verifyPart, "lines"], [dumpPart, "events"]]) {
        const percents = bars(part, unit);
        assert.deepEqual(percents, [...percents].sort((a, b) => a - b), "never goes back");
        assert.equal(percents.at(-1), 100);
      }
      assert.match(
        await Deno.readTextFile(`${dir}/verify.out`),
        new RegExp(`^OK: ${EVENTS} lines`),
      );
      const dumped = (await Deno.readTextFile(`${dir}/dump.out`)).trimEnd().split("\n");
      assert.equal(dumped.length, EVENTS);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("progress: verify and buffer inspect --dump draw nothing when stderr is not a terminal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-progress-" });
  try {
    await bigInputs(dir);
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}main.ts`, ...args],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr), out: out.stdout };
    };
    const verify = await run("verify", "--public-key", "signing.pub", "audit.log");
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr, "");
    const dump = await run("buffer", "inspect", "buffer", "--dump");
    assert.equal(dump.code, 0, dump.stderr);
    assert.ok(!dump.stderr.includes("\r") && !dump.stderr.includes("%"), dump.stderr);
    assert.match(dump.stderr, new RegExp(`${EVENTS} undelivered`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
