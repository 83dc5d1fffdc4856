/**
 * `auditpipe top` in a real 80x24 terminal (tmux): a daemon runs, events are sent, and the
 * screen's counts move and equal the daemon's /metrics; `q` and Ctrl-C quit and leave the
 * terminal as they found it (main screen, cursor shown, the same stty settings); a daemon
 * that goes away keeps its last numbers on screen under "UNREACHABLE since".
 */
import assert from "node:assert/strict";
import { needs } from "./helpers/external.ts";
import { postAccepted, realEvents, ROOT, startDaemon } from "./helpers/daemon.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { shQuote, startTerminal } from "./helpers/tmux.ts";
import { waitFor } from "./helpers/wait.ts";

/** The numbers of the screen's row for `name` in the table headed by `title`. */
function row(screen: string, title: string, name: string): string[] | null {
  const lines = screen.split("\n");
  const head = lines.findIndex((l) => l.startsWith(`${title} `));
  if (head < 0) return null;
  for (const l of lines.slice(head + 1)) {
    if (l.trim() === "") return null;
    const [first, ...cells] = l.trim().split(/\s+/);
    if (first === name) return cells;
  }
  return null;
}

/** Both tests' daemon: a webhook source and a log sink `archive`, with an ops port. */
const WEBHOOK_TO_LOG = [
  "sources:",
  "  - type: webhook",
  "    name: apiserver",
  "    listen: 127.0.0.1:0",
  "sinks:",
  "  - type: log",
  "    name: archive",
  "    path: out/audit.log",
  "server:",
  "  listen: 127.0.0.1:0",
  "",
].join("\n");

const num = (cell: string | undefined) => Number((cell ?? "NaN").replaceAll(",", ""));

Deno.test(
  needs(
    "tmux",
    "top: live counts in an 80x24 terminal match /metrics; q and Ctrl-C restore the terminal",
  ),
  async () => {
    const d = await startDaemon(() => WEBHOOK_TO_LOG);
    const ops = await d.opsPort();
    const webhook = await d.webhookPort();
    const top = [Deno.execPath(), "run", "-A", `${ROOT}main.ts`, "top"]
      .map(shQuote).join(" ") + ` --url http://127.0.0.1:${ops} --interval 500ms`;
    const dir = d.dir;
    // Runs top twice (quit with q, then with Ctrl-C), recording each exit status and the
    // terminal settings before and after; then leaves the pane open.
    const term = await startTerminal(
      dir,
      [
        `cd ${shQuote(dir)}`,
        "stty -g > stty.before",
        `${top}; echo $? > exit.1`,
        "stty -g > stty.after.1",
        "echo top exited once",
        // The second run covers the main screen with its own: it waits until the test has
        // looked at the screen the first one left.
        "while [ ! -e second.go ]; do sleep 0.05; done",
        `${top}; echo $? > exit.2`,
        "stty -g > stty.after.2",
        "echo top exited twice",
        "exec sleep 600",
      ].join("\n"),
    );
    try {
      let screen = await term.waitScreen(
        "top's first screen",
        (s) => row(s, "SINK", "archive") !== null,
        60_000,
      );
      for (const line of screen.split("\n")) assert.ok(line.length <= 80, line);
      assert.equal(num(row(screen, "SINK", "archive")![2]), 0, screen);
      assert.equal(await term.format("#{alternate_on}"), "1");

      const events = await realEvents(10);
      for (let i = 0; i < 3; i++) await postAccepted(webhook, events);
      // The screens until they show the events' count: rates above zero on the way.
      const moved = { in: false, out: false, source: false };
      screen = await term.waitScreen("30 events written on screen", (s) => {
        const sinkRow = row(s, "SINK", "archive");
        const sourceRow = row(s, "SOURCE", "apiserver");
        moved.in ||= num(sinkRow?.[0]) > 0;
        moved.out ||= num(sinkRow?.[1]) > 0;
        moved.source ||= num(sourceRow?.[0]) > 0;
        return num(sinkRow?.[2]) === 30 && num(sourceRow?.[1]) === 30;
      });
      assert.deepEqual(moved, { in: true, out: true, source: true }, "events/s moved");
      const sink = row(screen, "SINK", "archive")!;
      const source = row(screen, "SOURCE", "apiserver")!;
      const m = await scrapeMetrics(ops);
      assert.equal(num(source[1]), m.get('auditpipe_source_events_total{source="apiserver"}'));
      assert.equal(num(sink[2]), m.get('auditpipe_sink_written_total{sink="archive"}'));
      assert.equal(num(sink[3]), 0);
      // Rates fall back to zero once nothing arrives.
      await term.waitScreen("rates back at 0.0", (s) => row(s, "SINK", "archive")?.[0] === "0.0");

      await term.keys("q");
      screen = await term.waitScreen("top to quit on q", (s) => s.includes("top exited once"));
      assert.equal((await Deno.readTextFile(`${dir}/exit.1`)).trim(), "0");
      assert.equal(
        await Deno.readTextFile(`${dir}/stty.after.1`),
        await Deno.readTextFile(`${dir}/stty.before`),
        "stty settings restored",
      );
      assert.equal(await term.format("#{alternate_on}"), "0");
      assert.equal(await term.format("#{cursor_flag}"), "1");
      assert.ok(!screen.includes("SINK"), `the main screen is back:\n${screen}`);

      // Second run: the daemon goes away; the last numbers stay, marked unreachable.
      await Deno.writeTextFile(`${dir}/second.go`, "");
      await term.waitScreen("top again", (s) => row(s, "SINK", "archive") !== null, 60_000);
      assert.equal((await d.stop()).code, 0);
      screen = await term.waitScreen("UNREACHABLE", (s) => s.includes("UNREACHABLE since"));
      assert.equal(num(row(screen, "SINK", "archive")?.[2]), 30, screen);
      await term.keys("C-c");
      await term.waitScreen("top to quit on Ctrl-C", (s) => s.includes("top exited twice"));
      assert.equal((await Deno.readTextFile(`${dir}/exit.2`)).trim(), "0");
      assert.equal(
        await Deno.readTextFile(`${dir}/stty.after.2`),
        await Deno.readTextFile(`${dir}/stty.before`),
      );
      assert.equal(await term.format("#{alternate_on}"), "0");
      // The alternate screen was entered and left, and nothing but plain ANSI was written.
      const written = await term.written();
      assert.ok(written.includes("\x1b[?1049h") && written.includes("\x1b[?1049l"));
    } finally {
      await term.close();
      await d.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("top on a pipe prints one plain snapshot with the daemon's counts and exits 0", async () => {
  const d = await startDaemon(() => WEBHOOK_TO_LOG);
  try {
    const ops = await d.opsPort();
    await postAccepted(await d.webhookPort(), await realEvents(7));
    await waitFor(
      "7 events written",
      async () =>
        (await scrapeMetrics(ops)).get('auditpipe_sink_written_total{sink="archive"}') === 7,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "top", "--url", `http://127.0.0.1:${ops}/`],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(!text.includes("\x1b"), "no escape sequences on a pipe");
    assert.equal(num(row(text, "SINK", "archive")?.[2]), 7, text);
    assert.equal(num(row(text, "SOURCE", "apiserver")?.[1]), 7, text);
    assert.match(text, /rates and p99 over 1\.\ds/);
    for (const line of text.split("\n")) assert.ok(line.length <= 80, line);
  } finally {
    await d.stop();
    await Deno.remove(d.dir, { recursive: true });
  }
});
