/**
 * The command line of `auditpipe rbac`: audit2rbac's flags and defaults, and ours
 * (`--existing`, `--unused`, `--format`); its help text.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { VERSION } from "../version.ts";
import { serviceAccountUser } from "./objects.ts";
import type { OutputFormat } from "./output.ts";

/**
 * The help text.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP =
  `Usage: auditpipe rbac (--user NAME | --serviceaccount NAMESPACE:NAME) [-f FILE]... [options]

Write the Roles, ClusterRoles and bindings that allow exactly the API requests a user or
service account made in audit logs (what audit2rbac does), or, with --unused, which granted
rules those requests used.

Options:
      --user NAME               the user whose requests count (the impersonated user when
                                a request impersonated one)
      --serviceaccount NS:NAME  the service account whose requests count
  -f, --filename FILE           an audit log to read (repeatable; - for standard input;
                                default: standard input)
  -n, --namespace NS            count only requests on objects in namespace NS
      --expand-multi-name[=false]       a request made on several names is allowed on
                                        any name (default true)
      --expand-multi-namespace[=false]  a request made in several namespaces is allowed
                                        in all of them (default true)
      --generate-name NAME      name of the generated objects (default audit2rbac:\${user})
      --generate-labels K=V,... labels of the generated objects (default
                                audit2rbac.liggitt.net/user=\${user},
                                audit2rbac.liggitt.net/generated=true)
      --generate-annotations K=V,...  annotations (default
                                audit2rbac.liggitt.net/version=\${version})
      --existing FILE           RBAC objects already granted (YAML or JSON, a List or
                                documents; repeatable): print only what they do not allow
      --unused                  with --existing: instead of objects, report every rule the
                                subject is granted with the number of requests that used
                                it (unused rules have 0)
      --format yaml|json        output format (default yaml: documents separated by ---;
                                json: one v1 List)
  -h, --help                    show this help

\${user} is the username (system:serviceaccount:NS:NAME for a service account): in names,
lowercased with characters other than letters, digits and ':' replaced by '-'; in labels,
':' too (system-serviceaccount-ns1-sa1); in annotations, as it is. \${version} is
auditpipe's version. Every event of the subject counts, at any stage and whatever its
response (a refused request is one the subject needs). Inputs are read as by 'auditpipe
policy': JSON lines, EventLists, arrays, pretty-printed events, gzip, v1 and v1beta1,
streamed: memory grows with the number of distinct requests, not with the logs.

Exit status: 0 on success; 1 when no event matched the subject, or some input items were
not events (reported on stderr; the rest is used); 2 for bad usage, an unreadable input or
a bad --existing file.
`;

/**
 * A parsed command line, or what to do instead.
 *
 * @example
 * ```ts
 * const a = parseRbacArgs(["--user", "alice", "-f", "audit.log"]);
 * if (a.kind === "run") console.log(a.user); // "alice"
 * ```
 */
export type RbacArgs =
  | {
    readonly kind: "run";
    /** The username requests must come from. */
    readonly user: string;
    readonly namespace: string;
    readonly inputs: readonly string[];
    readonly existing: readonly string[];
    readonly unused: boolean;
    readonly format: OutputFormat;
    readonly expandMultipleNames: boolean;
    readonly expandMultipleNamespaces: boolean;
    readonly name: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  }
  | { readonly kind: "help" }
  | { readonly kind: "usage"; readonly message: string };

/**
 * A name with other characters than letters, digits and ':' replaced by '-', lowercased.
 *
 * @example
 * ```ts
 * sanitizeName("system:serviceaccount:ns1:sa1"); // "system:serviceaccount:ns1:sa1"
 * ```
 */
export function sanitizeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9:]/g, "-").toLowerCase();
}

/**
 * A label value with other characters than letters and digits replaced by '-', lowercased.
 *
 * @example
 * ```ts
 * sanitizeLabel("system:serviceaccount:ns1:sa1"); // "system-serviceaccount-ns1-sa1"
 * ```
 */
export function sanitizeLabel(s: string): string {
  return s.replace(/[^a-zA-Z0-9]/g, "-").toLowerCase();
}

/** `k=v` items (comma-separated, in one or more flags) as a map; none gives undefined. */
function keyValues(
  items: readonly string[],
  user: string,
  version: string,
): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const raw of items.flatMap((s) => s.split(","))) {
    const s = raw.trim();
    if (s === "") continue;
    const v = s.replaceAll("${user}", user).replaceAll("${version}", version);
    const eq = v.indexOf("=");
    out ??= {};
    if (eq < 0) out[v] = "";
    else out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

const BOOLS = ["expand-multi-name", "expand-multi-namespace"];

/**
 * Parses `args` (after the word `rbac`).
 *
 * @example
 * ```ts
 * parseRbacArgs(["--serviceaccount", "ns1:sa1"]); // { kind: "run", user: "system:serviceaccount:ns1:sa1", ... }
 * ```
 */
export function parseRbacArgs(args: readonly string[]): RbacArgs {
  // Go's flags take --flag=false; node:util's booleans do not take a value.
  const bools: Record<string, boolean> = {
    "expand-multi-name": true,
    "expand-multi-namespace": true,
  };
  const rest: string[] = [];
  for (const a of args) {
    const m = /^--([a-z-]+)=(.*)$/.exec(a);
    if (m !== null && BOOLS.includes(m[1])) {
      if (!["true", "false"].includes(m[2])) {
        return { kind: "usage", message: `--${m[1]} must be true or false, got "${m[2]}"` };
      }
      bools[m[1]] = m[2] === "true";
    } else if (a.startsWith("--") && BOOLS.includes(a.slice(2))) bools[a.slice(2)] = true;
    else rest.push(a);
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      allowPositionals: false,
      options: {
        user: { type: "string" },
        serviceaccount: { type: "string" },
        filename: { type: "string", short: "f", multiple: true },
        namespace: { type: "string", short: "n" },
        "generate-name": { type: "string" },
        "generate-labels": { type: "string", multiple: true },
        "generate-annotations": { type: "string", multiple: true },
        existing: { type: "string", multiple: true },
        unused: { type: "boolean" },
        format: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    return { kind: "usage", message: (e as Error).message };
  }
  if (values.help) return { kind: "help" };
  const usage = (message: string) => ({ kind: "usage", message }) as const;
  if (values.user !== undefined && values.serviceaccount !== undefined) {
    return usage("cannot set both --user and --serviceaccount");
  }
  let user = values.user ?? "";
  if (values.serviceaccount !== undefined) {
    const parts = values.serviceaccount.split(":");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      return usage(`--serviceaccount must be NAMESPACE:NAME, got "${values.serviceaccount}"`);
    }
    user = serviceAccountUser(parts[0], parts[1]);
  }
  if (user === "") return usage("--user or --serviceaccount is required");
  const format = values.format ?? "yaml";
  if (format !== "yaml" && format !== "json") {
    return usage(`--format must be yaml or json, got "${format}"`);
  }
  const existing = values.existing ?? [];
  if (values.unused && existing.length === 0) return usage("--unused needs --existing FILE");
  const inputs = values.filename ?? ["-"];
  if (inputs.filter((f) => f === "-").length > 1) {
    return usage("- (standard input) can be given only once");
  }
  const labels = values["generate-labels"] ??
    ["audit2rbac.liggitt.net/user=${user}", "audit2rbac.liggitt.net/generated=true"];
  const annotations = values["generate-annotations"] ??
    ["audit2rbac.liggitt.net/version=${version}"];
  const name = (values["generate-name"] ?? "audit2rbac:${user}")
    .replaceAll("${user}", sanitizeName(user))
    .replaceAll("${version}", sanitizeName(VERSION));
  if (name === "") return usage("--generate-name must not be empty");
  return {
    kind: "run",
    user,
    namespace: values.namespace ?? "",
    inputs,
    existing,
    unused: values.unused === true,
    format,
    expandMultipleNames: bools["expand-multi-name"],
    expandMultipleNamespaces: bools["expand-multi-namespace"],
    name,
    labels: keyValues(labels, sanitizeLabel(user), sanitizeLabel(VERSION)),
    annotations: keyValues(annotations, user, VERSION),
  };
}
