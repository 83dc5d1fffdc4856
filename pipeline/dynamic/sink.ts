/**
 * An AuditSink object as a sink: a webhook sink named `auditsink/<metadata.name>` built as
 * kube-apiserver 1.18's dynamic backend factory built its delegate
 * (`plugin/pkg/audit/dynamic/factory.go`): the webhook client of `clientConfig`
 * (`service` becomes `https://<name>.<namespace>.svc:<port><path>`; `caBundle`, when given,
 * is the only trust root), retried from a 500 ms backoff, behind the enforced policy and the
 * buffered backend with the dynamic defaults (`defaults.go`: buffer 5000, batches of 400,
 * 30 s, throttled at the object's qps and burst).
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { compilePolicy } from "../../policy/mod.ts";
import { dynamicToPolicy } from "../../policy/dynamic.ts";
import type { AuditSink } from "../../policy/dynamic_validate.ts";
import type { WebhookTarget } from "../../backends/kubeconfig.ts";
import { sinkSchema } from "../config/schema.ts";
import type { ResolvedSink } from "../config/files.ts";
import type { FoundSink } from "./read.ts";
import { AUDIT_SINK_PREFIX } from "./names.ts";

export { AUDIT_SINK_PREFIX } from "./names.ts";

/**
 * The batching of a dynamic backend (`plugin/pkg/audit/dynamic/defaults.go`); the throttle's
 * qps and burst are the object's.
 *
 * @example
 * ```ts
 * sinkSchema.parse({ type: "webhook", kubeconfig: "k", batch: { ...DYNAMIC_BATCH } });
 * ```
 */
export const DYNAMIC_BATCH = { bufferSize: 5000, maxSize: 400, maxWait: "30s" } as const;

/**
 * `factory.go` `retryBackoff`: the first wait before a failed batch is sent again.
 *
 * @example
 * ```ts
 * sinkSchema.parse({ type: "webhook", kubeconfig: "k", initialBackoff: DYNAMIC_RETRY_BACKOFF });
 * ```
 */
export const DYNAMIC_RETRY_BACKOFF = "500ms";

/**
 * The URL an AuditSink posts to: its `url`, or its service's cluster DNS name.
 *
 * @example
 * ```ts
 * auditSinkUrl(sink); // "https://collector.audit.svc:443/events"
 * ```
 */
export function auditSinkUrl(sink: AuditSink): string {
  const cc = sink.spec.webhook.clientConfig;
  if (cc.url !== undefined) return cc.url;
  const s = cc.service!;
  return `https://${s.name}.${s.namespace}.svc:${s.port}${s.path ?? ""}`;
}

/**
 * Why `pem` is not a usable CA bundle, or undefined when it holds at least one certificate
 * and nothing else that fails to parse.
 *
 * @example
 * ```ts
 * caBundleProblem("hello"); // "caBundle holds no PEM certificate"
 * ```
 */
export function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) return "caBundle holds no PEM certificate";
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      return `caBundle certificate ${i + 1} cannot be read: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/**
 * The policy label `describe()` shows for an AuditSink: its level and stages.
 *
 * @example
 * ```ts
 * policyLabel(sink); // "auditsink Metadata at ResponseComplete"
 * ```
 */
function policyLabel(sink: AuditSink): string {
  const { level, stages = [] } = sink.spec.policy;
  return `auditsink ${level}${stages.length ? ` at ${stages.join("+")}` : ""}`;
}

/**
 * The resolved sink an AuditSink runs as. Its fingerprint is its name and spec only, so an
 * object moved to another file or line keeps its branch (as kube-apiserver rebuilt a
 * delegate on spec changes only).
 *
 * @example
 * ```ts
 * const resolved = resolveAuditSink(found);
 * resolved.config.name; // "auditsink/team-a"
 * ```
 */
export function resolveAuditSink(found: FoundSink): ResolvedSink {
  const { sink } = found;
  const name = AUDIT_SINK_PREFIX + sink.metadata.name;
  const at = `${found.file}:${found.line}:${found.col}`;
  const { throttle, clientConfig } = sink.spec.webhook;
  const config = sinkSchema.parse({
    type: "webhook",
    name,
    // Named in the webhook sink's messages: where the object is.
    kubeconfig: at,
    mode: "batch",
    batch: { ...DYNAMIC_BATCH, throttle: { enabled: true, ...throttle } },
    initialBackoff: DYNAMIC_RETRY_BACKOFF,
  });
  const url = new URL(auditSinkUrl(sink));
  const target: WebhookTarget = {
    url,
    caCerts: clientConfig.caBundle !== undefined ? [clientConfig.caBundle] : undefined,
    onlyCaCerts: clientConfig.caBundle !== undefined,
    headers: {},
    warnings: [],
    files: [],
  };
  if (url.protocol === "http:" && clientConfig.caBundle !== undefined) {
    target.warnings.push("caBundle is not used: the URL is http");
  }
  const policy = dynamicToPolicy(sink.spec.policy);
  return {
    config,
    policy: {
      compiled: compilePolicy(policy),
      from: policyLabel(sink),
      canonical: JSON.stringify(policy),
    },
    target,
    fingerprint: JSON.stringify({ name, spec: sink.spec }),
    at,
  };
}
