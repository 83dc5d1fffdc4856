/**
 * The command line of `auditpipe policy`: its help text and parsing it into a
 * {@linkcode PolicyArgs}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_TOP } from "./report_document.ts";

/**
 * The help text.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage: auditpipe policy <command> --policy POLICY.yaml [FILE...|-]

Try an audit.k8s.io/v1 Policy on recorded audit events.

Commands:
  eval    print the policy's decision for each event, one JSON line per event:
          {"auditID","stage","level","omitStages","omitManagedFields","rule","kept"}
          (rule is the index of the matching rule, null when none matched; kept is
          false when the level is None or the event's stage is in omitStages)
  apply   print the events the policy keeps, lowered to their level, as JSON lines
  report  per rule: events matched, events kept, bytes in and out; rules never
          matched; events matching no rule (a FILE, or - for standard input, is required)

Options:
  -p, --policy FILE     the Policy (YAML or JSON)
      --json            report: print JSON instead of a table
      --html OUT.html   report: also write the report as one self-contained HTML page
                        (charts of bytes and events per rule, top users, resources and
                        verbs by bytes written, rules never matched; no network access)
      --compare POLICY  report: also count what POLICY would keep and save, per rule
      --top N           report: users, resources and verbs in the top lists (default 10)
  -h, --help            show this help

Each FILE is an audit log (JSON lines, as kube-apiserver writes it), an EventList, a JSON
array of events, or events one after another (pretty-printed or not); gzip files (rotated
logs kept by --audit-log-compress) are read as such. Several FILEs are read in order; "-"
or no FILE reads standard input. Inputs are streamed: any size is read in constant memory.

Exit status: 0 on success; 1 when some input lines or items were not events (each is
reported on stderr as FILE:LINE and the rest processed); 2 for bad usage, a bad policy, or
input that cannot be read.
`;

/**
 * The commands.
 *
 * @example
 * ```ts
 * const c: PolicyCommand = "report";
 * ```
 */
export type PolicyCommand = "eval" | "apply" | "report";

/**
 * A parsed command line, or what to do instead.
 *
 * @example
 * ```ts
 * const a = parsePolicyArgs(["eval", "-p", "p.yaml", "audit.log"]);
 * if (a.kind === "run") console.log(a.inputs); // ["audit.log"]
 * ```
 */
export type PolicyArgs =
  | {
    readonly kind: "run";
    readonly command: PolicyCommand;
    readonly policy: string;
    readonly json: boolean;
    /** `report --html`: the page to write. */
    readonly html: string | null;
    /** `report --compare`: the second policy's path. */
    readonly compare: string | null;
    /** `report --top`: length of the top lists. */
    readonly top: number;
    /** File paths, `-` for standard input; at least one. */
    readonly inputs: readonly string[];
  }
  /** Print the help; exit 0 when asked for, 2 when no command was given. */
  | { readonly kind: "help"; readonly status: 0 | 2 }
  /** Bad usage: print `message` (and the help when `withHelp`), exit 2. */
  | { readonly kind: "usage"; readonly message: string; readonly withHelp: boolean };

const COMMANDS: readonly string[] = ["eval", "apply", "report"];

/**
 * Parses `args`, which may start with the word `policy` or with the command.
 *
 * @example
 * ```ts
 * parsePolicyArgs(["report", "-p", "p.yaml"]); // { kind: "usage", message: "report needs ...", ... }
 * ```
 */
export function parsePolicyArgs(args: readonly string[]): PolicyArgs {
  if (args[0] === "policy") args = args.slice(1);
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        policy: { type: "string", short: "p" },
        json: { type: "boolean" },
        html: { type: "string" },
        compare: { type: "string" },
        top: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return { kind: "usage", message: (e as Error).message, withHelp: true };
  }
  const { values, positionals } = parsed;
  const [command, ...files] = positionals;
  if (values.help || command === "help") return { kind: "help", status: 0 };
  if (command === undefined) return { kind: "help", status: 2 };
  if (!COMMANDS.includes(command)) {
    return { kind: "usage", message: `unknown command "${command}"`, withHelp: true };
  }
  const usage = (message: string) => ({ kind: "usage", message, withHelp: false }) as const;
  if (values.policy === undefined) return usage(`${command} needs --policy FILE`);
  for (const flag of ["json", "html", "compare", "top"] as const) {
    if (values[flag] !== undefined && command !== "report") {
      return usage(`--${flag} is only for report`);
    }
  }
  const top = values.top === undefined ? DEFAULT_TOP : Number(values.top);
  if (!Number.isSafeInteger(top) || top < 1) {
    return usage(`--top must be a positive integer, got "${values.top}"`);
  }
  if (values.html === "") return usage(`--html needs a file name`);
  // Without a FILE, report would wait on a terminal for input it then summarizes.
  if (command === "report" && files.length === 0) {
    return usage(`report needs an input FILE (or - for standard input)`);
  }
  if (files.filter((f) => f === "-").length > 1) {
    return usage(`- (standard input) can be given only once`);
  }
  return {
    kind: "run",
    command: command as PolicyCommand,
    policy: values.policy,
    json: values.json === true,
    html: values.html ?? null,
    compare: values.compare ?? null,
    top,
    inputs: files.length > 0 ? files : ["-"],
  };
}
