/**
 * Reading the AuditSink folder: every `.yaml`, `.yml` and `.json` file in it (not in
 * sub-folders; names starting with `.` are skipped, so a mounted ConfigMap's `..data` and an
 * editor's temporary files are not read), each document of each file, and each item of a
 * `kind: List` (or `AuditSinkList`). Every object is read with kube-apiserver's defaults and
 * validation; an invalid one is reported at its file, line and column and left out.
 *
 * @module
 */
import { type Document, LineCounter, parseAllDocuments } from "yaml";
import { join } from "node:path";
import { type AuditSink, readAuditSink } from "../../policy/dynamic_validate.ts";
import { formatPath, type KeyPath, type Problem } from "../core/problem.ts";

/**
 * A valid AuditSink and where it is written.
 *
 * @example
 * ```ts
 * const found: FoundSink = { sink, file: "/etc/auditpipe/sinks.d/team-a.yaml", line: 1, col: 1 };
 * ```
 */
export interface FoundSink {
  readonly sink: AuditSink;
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/**
 * What a folder holds: valid AuditSinks in file-name then document order, and what was
 * wrong with the rest.
 *
 * @example
 * ```ts
 * const { sinks, problems } = await readSinkFolder("/etc/auditpipe/sinks.d");
 * ```
 */
export interface FolderContents {
  readonly sinks: FoundSink[];
  readonly problems: Problem[];
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** Positions of field paths in one YAML document. */
function positionIn(doc: Document, lines: LineCounter) {
  return (path: KeyPath): { line: number; col: number } => {
    // A missing field is placed at the nearest object that holds it.
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return lines.linePos(range[0]);
    }
    return { line: 1, col: 1 };
  };
}

/**
 * The AuditSinks in the text of one file, and its problems (YAML errors, objects that are
 * not valid AuditSinks).
 *
 * @example
 * ```ts
 * const { sinks, problems } = parseSinkFile(text, "team-a.yaml");
 * ```
 */
export function parseSinkFile(text: string, file: string): FolderContents {
  const sinks: FoundSink[] = [];
  const problems: Problem[] = [];
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  if (!Array.isArray(docs)) return { sinks, problems };
  for (const doc of docs) {
    if (doc.errors.length) {
      for (const e of doc.errors) {
        const { line, col } = lines.linePos(e.pos[0]);
        problems.push({
          file,
          line,
          col,
          path: "",
          message: `not valid YAML or JSON: ${e.message.split("\n")[0]}`,
        });
      }
      continue;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const at = positionIn(doc, lines);
    const kind = (value as { kind?: unknown }).kind;
    const isList = typeof kind === "string" && /List$/.test(kind) &&
      Array.isArray((value as { items?: unknown }).items);
    const objects: [unknown, KeyPath][] = isList
      ? (value as { items: unknown[] }).items.map((o, i) => [o, ["items", i]])
      : [[value, []]];
    for (const [obj, prefix] of objects) {
      const { sink, errors } = readAuditSink(obj);
      for (const e of errors) {
        const path = [...prefix, ...e.path];
        problems.push({ file, ...at(path), path: formatPath(path), message: e.message });
      }
      if (sink) sinks.push({ sink, file, ...at(prefix) });
    }
  }
  return { sinks, problems };
}

/**
 * Reads every AuditSink file in `dir`. Rejects when the folder itself cannot be read; a
 * file that cannot be read (removed while listed) is a problem, and reading goes on.
 *
 * @example
 * ```ts
 * const { sinks, problems } = await readSinkFolder("/etc/auditpipe/sinks.d");
 * for (const p of problems) log.error("invalid AuditSink; skipped", { problem: formatProblem(p) });
 * ```
 */
export async function readSinkFolder(dir: string): Promise<FolderContents> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || !EXTENSIONS.test(e.name) || e.isDirectory) continue;
    names.push(e.name);
  }
  names.sort();
  const sinks: FoundSink[] = [];
  const problems: Problem[] = [];
  for (const name of names) {
    const file = join(dir, name);
    let text: string;
    try {
      // A ConfigMap's files are links into its `..data` folder: follow them, skip folders.
      if (!(await Deno.stat(file)).isFile) continue;
      text = await Deno.readTextFile(file);
    } catch (err) {
      // Removed between the listing and the read: the next change event reads again.
      if (err instanceof Deno.errors.NotFound) continue;
      problems.push({ file, line: 0, col: 0, path: "", message: (err as Error).message });
      continue;
    }
    const found = parseSinkFile(text, file);
    sinks.push(...found.sinks);
    problems.push(...found.problems);
  }
  return { sinks, problems };
}
