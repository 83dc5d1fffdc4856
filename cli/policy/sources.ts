/**
 * The audit log inputs of a CLI command (`auditpipe policy`, `auditpipe rbac`) opened and
 * read as one source of event batches: files and `-` (stdin) opened up front so a missing
 * file fails before any output, a progress bar for large inputs on a terminal, and the
 * counts of what could not be read that decide the exit status.
 *
 * @module
 */
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { type NamedInput, readEvents } from "./input.ts";
import type { InputFile, PolicyCliIO } from "./io.ts";
import { Progress, PROGRESS_MIN_BYTES } from "./progress.ts";
import type { LineWriter } from "./writer.ts";

const STDIN_NAME = "<stdin>";

/** Whether an input names a URL to fetch rather than a file (audit2rbac's `-f` takes both). */
function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

/** A log fetched over HTTP(S), streamed as it arrives; any status but 200 is an error. */
async function openUrl(url: string): Promise<InputFile> {
  const res = await fetch(url);
  if (res.status !== 200 || res.body === null) {
    await res.body?.cancel();
    throw new Error(`GET ${url}: ${res.status} ${res.statusText}`.trimEnd());
  }
  const length = Number(res.headers.get("content-length") ?? "");
  return { stream: res.body, size: Number.isFinite(length) && length > 0 ? length : null };
}

/**
 * Opened inputs, read once through {@linkcode EventSource.batches}.
 *
 * @example
 * ```ts
 * for await (const batch of source.batches()) use(batch);
 * await source.progress.done();
 * return source.status();
 * ```
 */
export interface EventSource {
  /** The bar drawn while reading; call `done()` on it when reading ends. */
  readonly progress: Progress;
  /**
   * The events of all inputs in order, in batches. Problems go to the command's stderr
   * writer as they are found, written after each batch.
   */
  batches(): AsyncGenerator<Envelope[]>;
  /** Events read so far. */
  readonly events: number;
  /** Items that were not events so far. */
  readonly rejected: number;
  /** 2 when an input could not be read to its end, 1 when an item was not an event, else 0. */
  status(): 0 | 1 | 2;
}

/**
 * Opens `paths` (`-` is stdin, `http://` and `https://` are fetched) for the command named `command` (for messages), writing
 * problems found while reading to `err`. When one cannot be opened, the ones already open
 * are closed and the returned `error` says which (`cannot read FILE: reason`).
 *
 * @example
 * ```ts
 * const source = await openEventSource(io, ["audit.log", "-"], err, "policy");
 * if ("error" in source) return fail(source.error);
 * ```
 */
export async function openEventSource(
  io: PolicyCliIO,
  paths: readonly string[],
  err: LineWriter,
  command: string,
): Promise<EventSource | { readonly error: string }> {
  const inputs: NamedInput[] = [];
  for (const path of paths) {
    try {
      inputs.push(
        path === "-"
          ? { name: STDIN_NAME, file: io.openStdin() }
          : { name: path, file: isUrl(path) ? await openUrl(path) : await io.openFile(path) },
      );
    } catch (e) {
      for (const i of inputs) await i.file.stream.cancel().catch(() => {});
      const name = path === "-" ? STDIN_NAME : path;
      return { error: `cannot read ${name}: ${(e as Error).message}` };
    }
  }
  const sizes = inputs.map((i) => i.file.size);
  const total = sizes.every((s) => s !== null) ? sizes.reduce((x, y) => x + y, 0) : 0;
  const progress = new Progress(
    io.stderrIsTerminal && total >= PROGRESS_MIN_BYTES ? io.stderr : null,
    total,
  );

  let events = 0;
  let rejected = 0;
  let unreadable = 0;
  async function* batches(): AsyncGenerator<Envelope[]> {
    let ticks = 0;
    const read = readEvents(inputs, {
      // Called while decoding, which cannot wait: written after each batch.
      reject: (where, reason) => {
        rejected++;
        err.push(`${where}: not an event: ${reason}`);
      },
      onReadError: (name, e) => {
        unreadable++;
        err.push(`auditpipe ${command}: cannot read ${name} to its end: ${e.message}`);
      },
      onRead: (n) => progress.read(n),
    });
    for await (const batch of read) {
      yield batch;
      events += batch.length;
      // Every 64 chunks (~4 MiB), a turn of the event loop: V8 finishes incremental garbage
      // collection in tasks, and a loop that only awaits microtasks makes it grow the heap
      // instead (peak RSS on a 336 MB EventList: 130-170 MiB without, ~131 MiB with).
      if ((++ticks & 63) === 0) await new Promise((r) => setTimeout(r, 0));
      await progress.draw(events);
      await err.flushIfFull();
    }
  }
  return {
    progress,
    batches,
    get events() {
      return events;
    },
    get rejected() {
      return rejected;
    },
    status: () => unreadable > 0 ? 2 : rejected > 0 ? 1 : 0,
  };
}
