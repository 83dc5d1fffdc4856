/**
 * `auditpipe top [--url URL] [--once] [--interval 1s]`: a running daemon seen through its
 * `/metrics`, live on a terminal, or as one plain snapshot on a pipe or with `--once`.
 *
 * @module
 */
import { parseCommandLine, usageError } from "../args.ts";
import { parseDuration } from "../../pipeline/core/duration.ts";
import { errorMessage } from "../../pipeline/core/errors.ts";
import { renderTop } from "./render.ts";
import { metricsUrl, scrape } from "./scrape.ts";
import { runLive } from "./terminal.ts";
import { topView } from "./view.ts";

const PROG = "auditpipe top";

const HELP = `Usage: auditpipe top [--url URL] [--once] [--interval DURATION]

A running daemon at a glance, from its /metrics only: per source events/s, rejects and p99
request latency; per sink events/s in and out, written, dropped, retries and p99 write time;
what each sink's buffer holds (disk buffers: events, size, oldest event); drops by reason;
config reloads. Redraws every interval; q or Ctrl-C quits.
When stdout is not a terminal, or with --once, prints one snapshot (two scrapes 1 s apart, for
the rates) and exits.

Options:
      --url URL            the daemon's server.listen (default http://127.0.0.1:9090;
                           /metrics is added when the URL has no path)
      --once               print one snapshot and exit
      --interval DURATION  time between scrapes in the live view (default 1s)
  -h, --help               print this help

Exit status: 0; 1 when the URL does not answer with metrics; 2 for bad usage.
`;

/** Seconds between the two scrapes of a snapshot. */
const SNAPSHOT_MS = 1000;

/**
 * Runs `auditpipe top`; returns the exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await topCommand(["--url", "http://127.0.0.1:9090", "--once"]));
 * ```
 */
export async function topCommand(args: string[]): Promise<number> {
  const values = parseCommandLine(PROG, HELP, args, {
    url: { type: "string", default: "http://127.0.0.1:9090" },
    once: { type: "boolean", default: false },
    interval: { type: "string", default: "1s" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (typeof values === "number") return values;
  const intervalMs = parseDuration(values.interval);
  if (intervalMs === null || intervalMs < 100) {
    return usageError(
      PROG,
      `--interval must be a duration of 100ms or more (1s, 500ms), got "${values.interval}"`,
      HELP,
    );
  }
  let url: string;
  try {
    url = metricsUrl(values.url);
  } catch (err) {
    return usageError(PROG, `--url: ${errorMessage(err)}`, HELP);
  }
  // A slow answer is waited for up to an interval, but never less than 2 s (a busy daemon).
  const timeoutMs = Math.max(2000, intervalMs);
  const live = !values.once && Deno.stdout.isTerminal();
  const read = async () => {
    try {
      return await scrape(url, timeoutMs);
    } catch (err) {
      console.error(`${PROG}: cannot read metrics from ${errorMessage(err)}`);
      return null;
    }
  };
  const first = await read();
  if (first === null) return 1;
  if (live) return await runLive({ url, intervalMs, timeoutMs, first });
  await new Promise((r) => setTimeout(r, SNAPSHOT_MS));
  const second = await read();
  if (second === null) return 1;
  const view = topView(first, second, { url, takenAt: new Date(), unreachable: null });
  const width = Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 80;
  console.log(renderTop(view, { width }).join("\n"));
  return 0;
}
