/**
 * What the policy CLI reads from and writes to the outside, as an interface, so tests can run
 * it without a process; and the real process's files, stdin, stdout and stderr.
 *
 * @module
 */

/**
 * Where the CLI writes bytes.
 *
 * @example
 * ```ts
 * const chunks: Uint8Array[] = [];
 * const sink: ByteSink = { write: async (b) => void chunks.push(b.slice()) };
 * ```
 */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

/**
 * An opened input: its bytes as a stream, and its size when known (for the progress bar).
 *
 * @example
 * ```ts
 * const input: InputFile = { stream: new Blob(["{}\n"]).stream(), size: 3 };
 * ```
 */
export interface InputFile {
  readonly stream: ReadableStream<Uint8Array>;
  readonly size: number | null;
}

/**
 * A file opened for writing.
 *
 * @example
 * ```ts
 * const page = await createDiskFile("report.html");
 * await page.write(new TextEncoder().encode("<!doctype html>"));
 * page.close();
 * ```
 */
export interface OutputFile extends ByteSink {
  close(): void;
}

/**
 * Opens `path` on disk for writing, created or emptied.
 *
 * @example
 * ```ts
 * const io: Pick<PolicyCliIO, "createFile"> = { createFile: createDiskFile };
 * ```
 */
export async function createDiskFile(path: string): Promise<OutputFile> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  return { write: (b) => writeAll(file, b), close: () => file.close() };
}

/**
 * Everything the command reads from or writes to the outside.
 *
 * @example
 * ```ts
 * const out: Uint8Array[] = [];
 * const io: PolicyCliIO = {
 *   readFile: (p) => Deno.readFile(p),
 *   openFile: async (p) => ({ stream: (await Deno.open(p)).readable, size: null }),
 *   openStdin: () => ({ stream: new Blob([]).stream(), size: 0 }),
 *   stdout: { write: async (b) => void out.push(b.slice()) },
 *   stderr: { write: async (b) => void out.push(b.slice()) },
 *   stderrIsTerminal: false,
 * };
 * ```
 */
export interface PolicyCliIO {
  /** The whole of a small file (the policy). */
  readFile(path: string): Promise<Uint8Array>;
  /** An input file, opened (so a missing one fails before any output) but not yet read. */
  openFile(path: string): Promise<InputFile>;
  openStdin(): InputFile;
  /**
   * Opens an output file (`report --html`); {@linkcode createDiskFile} when absent, since
   * tests that capture stdout still want a real file to open in a browser.
   */
  readonly createFile?: (path: string) => Promise<OutputFile>;
  readonly stdout: ByteSink;
  readonly stderr: ByteSink;
  /** Whether a progress bar may be drawn on stderr. */
  readonly stderrIsTerminal: boolean;
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}

/**
 * The real process's I/O.
 *
 * @example
 * ```ts
 * const status = await runPolicyCli(["eval", "-p", "policy.yaml", "audit.log"], processIO());
 * ```
 */
export function processIO(): PolicyCliIO {
  return {
    readFile: (path) => Deno.readFile(path),
    openFile: async (path) => {
      const file = await Deno.open(path);
      try {
        const info = await file.stat();
        if (info.isDirectory) throw new Error("is a directory");
        return { stream: file.readable, size: info.isFile ? info.size : null };
      } catch (err) {
        file.close();
        throw err;
      }
    },
    openStdin: () => ({ stream: Deno.stdin.readable, size: null }),
    createFile: createDiskFile,
    stdout: { write: (b) => writeAll(Deno.stdout, b) },
    stderr: { write: (b) => writeAll(Deno.stderr, b) },
    stderrIsTerminal: Deno.stderr.isTerminal(),
  };
}
