/**
 * Reading what a config names: policies (compiled once each), kubeconfigs, TLS files and
 * tokens. Each source and sink is resolved into one record, its config with the files it
 * needs, so the builder never matches parallel arrays by index. Every problem is reported
 * with the position of the key that named the file (or, for a policy file, in that file), so
 * `--check` lists them all at once. What checks a token or a signing key (hono's header rules,
 * `node:crypto`) is imported only for a config that has one, so a daemon without them starts
 * without loading them.
 *
 * @module
 */
import type { LoadedConfig } from "./load.ts";
import type { SinkConfig, SourceConfig } from "./schema.ts";
import { formatPath, type KeyPath, type Problem } from "../core/problem.ts";
import { PolicyCache, type ResolvedPolicy } from "./policies.ts";
import { loadKubeconfig, type WebhookTarget } from "../../backends/kubeconfig.ts";
import type { NatsSecurity } from "../core/nats_connect.ts";
import type { KeyObject } from "node:crypto";

export type { ResolvedPolicy } from "./policies.ts";

/**
 * PEM texts of a webhook source's TLS files.
 *
 * @example
 * ```ts
 * const tls: WebhookTls = { cert: "-----BEGIN CERTIFICATE-----...", key: "-----BEGIN PRIVATE KEY-----..." };
 * ```
 */
export interface WebhookTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCA?: string;
}

/**
 * One sink with the files it needs, read and checked.
 *
 * @example
 * ```ts
 * for (const sink of resources.sinks) createSink(sink.config, ctx, sink.target, sink.nats);
 * ```
 */
export interface ResolvedSink {
  readonly config: SinkConfig;
  /** Its own policy or the config's default; null passes every event. */
  readonly policy: ResolvedPolicy | null;
  /** A webhook sink's target, from its kubeconfig. */
  readonly target?: WebhookTarget;
  /** A NATS sink's TLS material and credentials. */
  readonly nats?: NatsSecurity;
  /** A log sink's Ed25519 key for `integrity.signingKey`. */
  readonly signingKey?: KeyObject;
  /**
   * Everything that shapes the sink's branch (its config, the content of its policy and
   * kubeconfig). A reload keeps a branch whose fingerprint did not change.
   */
  readonly fingerprint: string;
  /**
   * Where the sink is declared, for errors, when not in the config's `sinks` (an AuditSink's
   * `file:line:col`).
   */
  readonly at?: string;
}

/**
 * One source with the files it needs, read and checked.
 *
 * @example
 * ```ts
 * for (const source of resources.sources) console.log(source.config.name, source.fingerprint);
 * ```
 */
export interface ResolvedSource {
  readonly config: SourceConfig;
  /** A webhook source's TLS material. */
  readonly tls?: WebhookTls;
  /** The bearer token a webhook source requires. */
  readonly token?: string;
  /** A NATS source's TLS material and credentials. */
  readonly nats?: NatsSecurity;
  /** The same as {@linkcode ResolvedSink.fingerprint}, for sources. */
  readonly fingerprint: string;
}

/**
 * A config's sources and sinks, resolved, in config order.
 *
 * @example
 * ```ts
 * const { resources } = await loadResources(loaded);
 * resources.sinks[0].policy?.from; // "/etc/auditpipe/policy.yaml"
 * ```
 */
export interface Resources {
  readonly sources: readonly ResolvedSource[];
  readonly sinks: readonly ResolvedSink[];
  /** Warnings (unknown policy fields and the like), already formatted. */
  readonly warnings: string[];
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "file not found";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return (err as Error).message;
}

/** Reads files named at key paths of one config; what cannot be read becomes a problem. */
class Reader {
  readonly problems: Problem[] = [];
  constructor(readonly loaded: LoadedConfig) {}

  problem(at: KeyPath, message: string): void {
    const { file, position } = this.loaded;
    this.problems.push({ file, ...position(at), path: formatPath(at), message });
  }

  readonly text = async (at: KeyPath, name: string): Promise<string | undefined> => {
    try {
      return await Deno.readTextFile(name);
    } catch (err) {
      this.problem(at, `${reason(err)}: ${name}`);
      return undefined;
    }
  };

  /** A file that must not be empty (a token, a key). */
  async nonEmpty(at: KeyPath, name: string | undefined): Promise<string | undefined> {
    if (name === undefined) return undefined;
    const text = await this.text(at, name);
    if (text !== undefined && text.trim() === "") this.problem(at, `file is empty: ${name}`);
    return text;
  }
}

/**
 * Reads and checks every file `loaded` names. Never throws; returns the problems found.
 *
 * @example
 * ```ts
 * const { resources, problems } = await loadResources(loaded);
 * if (problems.length) throw new ConfigError(problems);
 * ```
 */
export async function loadResources(
  loaded: LoadedConfig,
): Promise<{ resources: Resources; problems: Problem[] }> {
  const { config } = loaded;
  const read = new Reader(loaded);
  const warnings: string[] = [];
  const policies = new PolicyCache(loaded, read.text, read.problems, warnings);
  const defaultPolicy = await policies.get(["policy"], config.policy);
  const sinks: ResolvedSink[] = [];
  for (const [i, sink] of config.sinks.entries()) {
    const policy = sink.policy === undefined
      ? defaultPolicy
      : await policies.get(["sinks", i, "policy"], sink.policy);
    sinks.push(await resolveSink(read, ["sinks", i], sink, policy));
  }
  const sources: ResolvedSource[] = [];
  for (const [i, source] of config.sources.entries()) {
    sources.push(await resolveSource(read, ["sources", i], source));
  }
  return { resources: { sources, sinks, warnings }, problems: read.problems };
}

async function resolveSink(
  read: Reader,
  at: KeyPath,
  config: SinkConfig,
  policy: ResolvedPolicy | null,
): Promise<ResolvedSink> {
  let target: WebhookTarget | undefined;
  if (config.type === "webhook") {
    try {
      target = await loadKubeconfig(config.kubeconfig);
    } catch (err) {
      read.problem([...at, "kubeconfig"], (err as Error).message);
    }
  }
  const nats = config.type === "nats" ? await readNatsSecurity(read, at, config) : undefined;
  const key = config.type === "log" && config.integrity
    ? await readSigningKey(read, [...at, "integrity", "signingKey"], config.integrity.signingKey)
    : undefined;
  const fingerprint = JSON.stringify({
    sink: config,
    policy: policy?.canonical ?? null,
    target: target ? { ...target, url: target.url.href } : null,
    nats: nats ?? null,
    // The public key's fingerprint stands for the key: a new key rebuilds the branch.
    signingKey: key ? await publicKeyFingerprint(key.key) : null,
  });
  return { config, policy, target, nats, signingKey: key?.key, fingerprint };
}

/** `node:crypto`'s `createPrivateKey`, imported for the configs that sign their logs. */
async function privateKey(pem: string): Promise<KeyObject> {
  return (await import("node:crypto")).createPrivateKey(pem);
}

/** What identifies a signing key: its public key's fingerprint. */
async function publicKeyFingerprint(key: KeyObject): Promise<string> {
  return (await import("../../backends/integrity/format.ts")).keyFingerprint(key);
}

/**
 * A log sink's private signing key: it must exist, be readable by its owner only (like an
 * ssh key) and be an Ed25519 private key (`auditpipe keygen` writes one).
 */
async function readSigningKey(
  read: Reader,
  at: KeyPath,
  name: string,
): Promise<{ key: KeyObject } | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(name);
  } catch (err) {
    read.problem(at, `${reason(err)}: ${name}`);
    return undefined;
  }
  const mode = (info.mode ?? 0) & 0o777;
  if (mode & 0o077) {
    read.problem(
      at,
      `private key is readable by others (mode ${
        mode.toString(8).padStart(4, "0")
      }); run: chmod 600 ${name}`,
    );
    return undefined;
  }
  const pem = await read.text(at, name);
  if (pem === undefined) return undefined;
  try {
    const key = await privateKey(pem);
    if (key.asymmetricKeyType !== "ed25519") {
      read.problem(at, `not an Ed25519 private key (${key.asymmetricKeyType}): ${name}`);
      return undefined;
    }
    return { key };
  } catch (err) {
    read.problem(at, `not a PEM private key: ${name}: ${(err as Error).message}`);
    return undefined;
  }
}

async function resolveSource(
  read: Reader,
  at: KeyPath,
  config: SourceConfig,
): Promise<ResolvedSource> {
  let tls: WebhookTls | undefined;
  let token: string | undefined;
  let nats: NatsSecurity | undefined;
  if (config.type === "webhook") {
    tls = await readWebhookTls(read, [...at, "tls"], config.tls);
    token = await readBearerToken(read, [...at, "auth"], config.auth);
  } else if (config.type === "nats") nats = await readNatsSecurity(read, at, config);
  const fingerprint = JSON.stringify({
    source: config,
    tls: tls ?? null,
    token: token ?? null,
    nats: nats ?? null,
  });
  return { config, tls, token, nats, fingerprint };
}

/** A webhook source's certificate, key and client CA. */
async function readWebhookTls(
  read: Reader,
  at: KeyPath,
  tls: { certFile: string; keyFile: string; clientCAFile?: string } | undefined,
): Promise<WebhookTls | undefined> {
  if (!tls) return undefined;
  const cert = await read.text([...at, "certFile"], tls.certFile);
  const key = await read.text([...at, "keyFile"], tls.keyFile);
  const clientCA = tls.clientCAFile
    ? await read.text([...at, "clientCAFile"], tls.clientCAFile)
    : undefined;
  return cert !== undefined && key !== undefined ? { cert, key, clientCA } : undefined;
}

/** The webhook source's token check, imported with the webhook source's modules. */
async function tokenChecker(): Promise<(token: string, report: (why: string) => void) => void> {
  return (await import("../ingest/webhook/auth.ts")).checkToken;
}

/** The bearer token a webhook source requires: `auth.bearerTokenFile` or `auth.bearerToken`. */
async function readBearerToken(
  read: Reader,
  at: KeyPath,
  auth: { bearerTokenFile?: string; bearerToken?: string } | undefined,
): Promise<string | undefined> {
  if (auth?.bearerTokenFile) {
    const key = [...at, "bearerTokenFile"];
    const token = (await read.text(key, auth.bearerTokenFile))?.trim();
    if (token === "") read.problem(key, "token file is empty");
    // kube-apiserver sends the token as a header value: refuse what it cannot send.
    else if (token) (await tokenChecker())(token, (why) => read.problem(key, why));
    return token;
  }
  if (auth?.bearerToken !== undefined) {
    const key = [...at, "bearerToken"];
    if (auth.bearerToken === "") read.problem(key, "token is empty");
    else (await tokenChecker())(auth.bearerToken, (why) => read.problem(key, why));
    return auth.bearerToken;
  }
  return undefined;
}

/** A NATS source's or sink's `tls` and `auth` files, read. */
async function readNatsSecurity(
  read: Reader,
  at: KeyPath,
  cfg: {
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
    auth?: {
      token?: string;
      tokenFile?: string;
      user?: string;
      password?: string;
      passwordFile?: string;
      credsFile?: string;
    };
  },
): Promise<NatsSecurity | undefined> {
  if (!cfg.tls && !cfg.auth) return undefined;
  const file = (...key: string[]) => (name: string | undefined) =>
    read.nonEmpty([...at, ...key], name);
  const tls = cfg.tls && {
    ca: await file("tls", "caFile")(cfg.tls.caFile),
    cert: await file("tls", "certFile")(cfg.tls.certFile),
    key: await file("tls", "keyFile")(cfg.tls.keyFile),
  };
  const a = cfg.auth;
  return {
    tls,
    token: a?.token ?? (await file("auth", "tokenFile")(a?.tokenFile))?.trim(),
    user: a?.user,
    pass: a?.password ?? (await file("auth", "passwordFile")(a?.passwordFile))?.trim(),
    creds: await file("auth", "credsFile")(a?.credsFile),
  };
}
