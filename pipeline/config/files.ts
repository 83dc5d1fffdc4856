/**
 * Reading what a config names: policies (compiled once each), kubeconfigs, TLS files and
 * token files. Every problem is reported with the position of the key that named the file,
 * so `--check` lists them all at once.
 *
 * @module
 */
import type { LoadedConfig } from "./load.ts";
import type { ConfigProblem, KeyPath } from "./errors.ts";
import { formatPath } from "./errors.ts";
import {
  type CompiledPolicy,
  compilePolicy,
  parsePolicy,
  policyFromObject,
} from "../../policy/mod.ts";
import { loadKubeconfig, type WebhookTarget } from "../../backends/kubeconfig.ts";
import type { NatsSecurity } from "../core/nats_connect.ts";
import { checkToken } from "../ingest/webhook/auth.ts";

/** The files a config names, read and checked. */
export interface Resources {
  /** Per sink index: its compiled policy, or null for pass-through. */
  readonly sinkPolicies: (CompiledPolicy | null)[];
  /** Per sink index: the webhook target of a webhook sink. */
  readonly webhookTargets: (WebhookTarget | undefined)[];
  /** Per source index: TLS PEM texts of a webhook source. */
  readonly tls: ({ cert: string; key: string; clientCA?: string } | undefined)[];
  /** Per source index: the bearer token of a webhook source. */
  readonly tokens: (string | undefined)[];
  /** Per sink and per source index: TLS material and credentials of a NATS connection. */
  readonly nats: {
    readonly sinks: (NatsSecurity | undefined)[];
    readonly sources: (NatsSecurity | undefined)[];
  };
  /** Warnings (unknown policy fields and the like), already formatted. */
  readonly warnings: string[];
  /**
   * Per sink index: everything that shapes the sink's branch (its config, the content of its
   * policy and kubeconfig). A reload keeps a branch whose fingerprint did not change.
   */
  readonly sinkFingerprints: string[];
  /** Per source index: the same for sources (config, TLS material, token). */
  readonly sourceFingerprints: string[];
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "file not found";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return (err as Error).message;
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
): Promise<{ resources: Resources; problems: ConfigProblem[] }> {
  const { config, file } = loaded;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const problem = (path: KeyPath, message: string) =>
    problems.push({ file, ...loaded.position(path), path: formatPath(path), message });

  const readText = async (path: KeyPath, name: string): Promise<string | undefined> => {
    try {
      return await Deno.readTextFile(name);
    } catch (err) {
      problem(path, `${reason(err)}: ${name}`);
      return undefined;
    }
  };

  const compiled = new Map<string, CompiledPolicy | null>();
  const policyText = new Map<CompiledPolicy, string>();
  const policyAt = async (path: KeyPath, ref: unknown): Promise<CompiledPolicy | null> => {
    if (ref === undefined) return null;
    const key = typeof ref === "string" ? ref : JSON.stringify(ref);
    if (compiled.has(key)) return compiled.get(key)!;
    let result: CompiledPolicy | null = null;
    try {
      if (typeof ref === "string") {
        const text = await readText(path, ref);
        if (text !== undefined) {
          const p = parsePolicy(text, ref);
          warnings.push(...p.warnings);
          result = compilePolicy(p.policy);
          policyText.set(result, JSON.stringify(p.policy));
        }
      } else {
        const p = policyFromObject(ref, file, (sub) => loaded.position([...path, ...sub]));
        warnings.push(...p.warnings);
        result = compilePolicy(p.policy);
        policyText.set(result, JSON.stringify(p.policy));
      }
    } catch (err) {
      // Policy errors carry their own file:line:col.
      problems.push({ file: "", line: 0, col: 0, path: "", message: (err as Error).message });
    }
    compiled.set(key, result);
    return result;
  };

  const defaultPolicy = await policyAt(["policy"], config.policy);
  const sinkPolicies: (CompiledPolicy | null)[] = [];
  const webhookTargets: (WebhookTarget | undefined)[] = [];
  for (const [i, sink] of config.sinks.entries()) {
    sinkPolicies.push(
      sink.policy === undefined
        ? defaultPolicy
        : await policyAt(["sinks", i, "policy"], sink.policy),
    );
    if (sink.type === "webhook") {
      try {
        webhookTargets.push(await loadKubeconfig(sink.kubeconfig));
      } catch (err) {
        problem(["sinks", i, "kubeconfig"], (err as Error).message);
        webhookTargets.push(undefined);
      }
    } else webhookTargets.push(undefined);
  }

  /** A NATS source's or sink's `tls` and `auth` files, read. */
  const natsSecurity = async (
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
  ): Promise<NatsSecurity | undefined> => {
    if (!cfg.tls && !cfg.auth) return undefined;
    const file = async (key: string, name: string | undefined, trim = false) => {
      if (name === undefined) return undefined;
      const text = await readText([...at, ...key.split(".")], name);
      if (text !== undefined && text.trim() === "") {
        problem([...at, ...key.split(".")], `file is empty: ${name}`);
      }
      return trim ? text?.trim() : text;
    };
    const tls = cfg.tls && {
      ca: await file("tls.caFile", cfg.tls.caFile),
      cert: await file("tls.certFile", cfg.tls.certFile),
      key: await file("tls.keyFile", cfg.tls.keyFile),
    };
    const a = cfg.auth;
    return {
      tls,
      token: a?.token ?? await file("auth.tokenFile", a?.tokenFile, true),
      user: a?.user,
      pass: a?.password ?? await file("auth.passwordFile", a?.passwordFile, true),
      creds: await file("auth.credsFile", a?.credsFile),
    };
  };
  const nats: Resources["nats"] = { sinks: [], sources: [] };
  for (const [i, sink] of config.sinks.entries()) {
    nats.sinks.push(sink.type === "nats" ? await natsSecurity(["sinks", i], sink) : undefined);
  }
  for (const [i, source] of config.sources.entries()) {
    nats.sources.push(
      source.type === "nats" ? await natsSecurity(["sources", i], source) : undefined,
    );
  }

  const tls: Resources["tls"] = [];
  const tokens: Resources["tokens"] = [];
  for (const [i, source] of config.sources.entries()) {
    let pem: Resources["tls"][number];
    let token: string | undefined;
    if (source.type === "webhook") {
      if (source.tls) {
        const at = ["sources", i, "tls"];
        const cert = await readText([...at, "certFile"], source.tls.certFile);
        const key = await readText([...at, "keyFile"], source.tls.keyFile);
        const clientCA = source.tls.clientCAFile
          ? await readText([...at, "clientCAFile"], source.tls.clientCAFile)
          : undefined;
        if (cert !== undefined && key !== undefined) pem = { cert, key, clientCA };
      }
      if (source.auth?.bearerTokenFile) {
        token =
          (await readText(["sources", i, "auth", "bearerTokenFile"], source.auth.bearerTokenFile))
            ?.trim();
        if (token === "") problem(["sources", i, "auth", "bearerTokenFile"], "token file is empty");
      } else if (source.auth?.bearerToken !== undefined) {
        token = source.auth.bearerToken;
        if (token === "") problem(["sources", i, "auth", "bearerToken"], "token is empty");
      }
      const tokenKey = source.auth?.bearerTokenFile ? "bearerTokenFile" : "bearerToken";
      if (token) checkToken(token, (why) => problem(["sources", i, "auth", tokenKey], why));
    }
    tls.push(pem);
    tokens.push(token);
  }
  const sinkFingerprints = config.sinks.map((sink, i) => {
    const policy = sinkPolicies[i];
    const target = webhookTargets[i];
    return JSON.stringify({
      sink,
      policy: policy ? policyText.get(policy) : null,
      target: target ? { ...target, url: target.url.href } : null,
      nats: nats.sinks[i] ?? null,
    });
  });
  const sourceFingerprints = config.sources.map((source, i) =>
    JSON.stringify({
      source,
      tls: tls[i] ?? null,
      token: tokens[i] ?? null,
      nats: nats.sources[i] ?? null,
    })
  );
  return {
    resources: {
      sinkPolicies,
      webhookTargets,
      tls,
      tokens,
      nats,
      warnings,
      sinkFingerprints,
      sourceFingerprints,
    },
    problems,
  };
}
