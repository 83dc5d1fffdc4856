/**
 * The least Deno permissions a config needs: the files it reads and writes, the addresses it
 * listens on and connects to, and the environment variables it expands. `auditpipe
 * permissions` prints them as flags for `deno run` and systemd units.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { LoadedConfig } from "./config/load.ts";
import type { Resources } from "./config/files.ts";
import { hostPort, parseListen } from "./core/listen.ts";
import { dynamicDir } from "./dynamic/folder.ts";

/** Permission scopes, each a sorted list without duplicates. */
export interface Permissions {
  readonly read: string[];
  readonly write: string[];
  readonly net: string[];
  readonly env: string[];
}

/**
 * Environment variables read by the libraries themselves: `yaml` checks `LOG_TOKENS` and
 * `LOG_STREAM` on every parse (debug switches), and Deno denies the read rather than
 * returning nothing.
 */
const LIBRARY_ENV = ["LOG_STREAM", "LOG_TOKENS"];

/**
 * What `loaded` needs to run, and nothing more.
 *
 * @example
 * ```ts
 * const perms = requiredPermissions(loaded, resources);
 * permissionFlags(perms); // ["--allow-read=/etc/auditpipe/pipeline.yaml,...", ...]
 * ```
 */
export function requiredPermissions(loaded: LoadedConfig, resources: Resources): Permissions {
  const { config } = loaded;
  const read = new Set<string>([resolve(loaded.file)]);
  const write = new Set<string>();
  const net = new Set<string>();
  const env = new Set<string>([...loaded.envVars, ...LIBRARY_ENV]);

  if (typeof config.policy === "string") read.add(config.policy);
  // The AuditSink folder; the collectors its objects name cannot be known in advance.
  const dir = dynamicDir(loaded);
  if (dir !== undefined) read.add(dir);
  if (config.server.listen) net.add(hostPort(parseListen(config.server.listen)));
  for (const s of config.sources) {
    switch (s.type) {
      case "webhook":
        net.add(hostPort(parseListen(s.listen)));
        if (s.tls) {
          read.add(s.tls.certFile).add(s.tls.keyFile);
          if (s.tls.clientCAFile) read.add(s.tls.clientCAFile);
        }
        if (s.auth?.bearerTokenFile) read.add(s.auth.bearerTokenFile);
        if (s.deadLetterFile) write.add(s.deadLetterFile);
        break;
      case "tail": {
        // The folder, not the file: rotated files get new names beside it.
        read.add(dirname(s.path));
        if (s.checkpointFile) {
          // Written as a temporary file and renamed over the checkpoint.
          read.add(dirname(s.checkpointFile));
          write.add(dirname(s.checkpointFile));
        }
        break;
      }
      case "stdin":
        break;
      case "nats":
        for (const server of s.servers) net.add(new URL(server).host);
        natsFiles(s, read);
        break;
    }
  }
  config.sinks.forEach((s, i) => {
    if (typeof s.policy === "string") read.add(s.policy);
    if (s.buffer.type === "disk" && s.buffer.path !== undefined) {
      // Segments and the cursor are created, renamed and deleted in the buffer's folder.
      read.add(s.buffer.path);
      write.add(s.buffer.path);
    }
    switch (s.type) {
      case "log":
        if (s.path !== "-") {
          // Rotation creates, renames, lists and deletes files in the folder.
          read.add(dirname(s.path));
          write.add(dirname(s.path));
          if (s.integrity) read.add(s.integrity.signingKey);
        }
        break;
      case "webhook": {
        read.add(s.kubeconfig);
        const target = resources.sinks[i]?.target;
        if (target) {
          for (const f of target.files) read.add(f);
          const u = target.url;
          net.add(`${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`);
        }
        break;
      }
      case "nats":
        for (const server of s.servers) net.add(new URL(server).host);
        natsFiles(s, read);
        break;
      case "stdout":
        break;
    }
  });
  const sorted = (s: Set<string>) => [...s].sort();
  return { read: sorted(read), write: sorted(write), net: sorted(net), env: sorted(env) };
}

/**
 * `deno run` flags granting `p`; scopes that are empty get no flag at all.
 *
 * @example
 * ```ts
 * permissionFlags({ read: ["/a"], write: [], net: ["127.0.0.1:8080"], env: [] });
 * // ["--allow-read=/a", "--allow-net=127.0.0.1:8080"]
 * ```
 */
export function permissionFlags(p: Permissions): string[] {
  const flags: string[] = [];
  for (
    const [name, list] of [["read", p.read], ["write", p.write], ["net", p.net], [
      "env",
      p.env,
    ]] as const
  ) {
    if (list.length) flags.push(`--allow-${name}=${list.join(",")}`);
  }
  return flags;
}

/** The TLS and credential files of a NATS source or sink. */
function natsFiles(
  s: {
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
    auth?: { tokenFile?: string; passwordFile?: string; credsFile?: string };
  },
  read: Set<string>,
): void {
  for (
    const f of [
      s.tls?.caFile,
      s.tls?.certFile,
      s.tls?.keyFile,
      s.auth?.tokenFile,
      s.auth?.passwordFile,
      s.auth?.credsFile,
    ]
  ) {
    if (f !== undefined) read.add(f);
  }
}
