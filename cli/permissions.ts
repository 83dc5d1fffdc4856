/**
 * `auditpipe permissions --config PATH`: prints the Deno permission flags the config needs,
 * for `deno run` or a systemd unit.
 *
 * @module
 */
import { resolve } from "node:path";
import { parseCommandLine, usageError } from "./args.ts";
import { loadConfigFile } from "../pipeline/config/load.ts";
import { loadResources } from "../pipeline/config/files.ts";
import { ConfigError, formatProblem } from "../pipeline/config/errors.ts";
import { permissionFlags, requiredPermissions } from "../pipeline/permissions.ts";

const HELP = `Usage: auditpipe permissions --config PATH [--pid-file PATH] [--json]

Prints the least Deno permission flags the config needs, on one line:
  deno run $(auditpipe permissions --config pipeline.yaml) main.ts --config pipeline.yaml
  --pid-file PATH  the daemon will run with --pid-file PATH: grant reading and writing it
  --json           print {"read":[...],"write":[...],"net":[...],"env":[...]} instead
Start the daemon through 'env --block-signal=USR1 deno run ...': no permission flag stops
Deno from opening a debugger on SIGUSR1.
`;

/**
 * Runs the permissions command; returns the exit code.
 *
 * @example
 * ```ts
 * await permissionsCommand(["--config", "pipeline.yaml"]); // prints --allow-read=... ...
 * ```
 */
export async function permissionsCommand(args: string[]): Promise<number> {
  const values = parseCommandLine("auditpipe permissions", HELP, args, {
    config: { type: "string", short: "c" },
    json: { type: "boolean", default: false },
    "pid-file": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (typeof values === "number") return values;
  if (!values.config) return usageError("auditpipe permissions", "--config is required", HELP);
  try {
    const loaded = await loadConfigFile(values.config);
    const { resources, problems } = await loadResources(loaded);
    if (problems.length) throw new ConfigError(problems);
    let perms = requiredPermissions(loaded, resources);
    const pidFile = values["pid-file"];
    if (pidFile !== undefined) {
      const abs = resolve(pidFile);
      const add = (list: string[]) => [...new Set([...list, abs])].sort();
      perms = { ...perms, read: add(perms.read), write: add(perms.write) };
    }
    console.log(values.json ? JSON.stringify(perms) : permissionFlags(perms).join(" "));
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) console.error(formatProblem(p));
    return 2;
  }
}
