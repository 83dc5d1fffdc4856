/**
 * Reading and validating an `auditregistration.k8s.io/v1alpha1` AuditSink object as
 * kube-apiserver 1.18 did before storing it: the v1alpha1 defaults
 * (`pkg/apis/auditregistration/v1alpha1/defaults.go`: throttle qps 10, burst 15; service
 * port 443) and `pkg/apis/auditregistration/validation/validation.go` (name a DNS-1123
 * subdomain, no namespace; level and stages valid, stages required unless level is None;
 * exactly one of url and service; the url's host present, no user info, query or fragment;
 * the service's name, namespace, port and path; throttle values > 0). Messages are
 * Kubernetes field errors. Pure: the caller parses files and maps paths to positions.
 *
 * @module
 */
import { LEVELS, STAGES } from "../pipeline/core/event.ts";
import type { Level, Stage } from "../pipeline/core/event.ts";
import type { KeyPath } from "../pipeline/core/problem.ts";
import { type FieldError, invalid, notSupported, required } from "./dynamic_errors.ts";
import { dns1123Subdomain, validateWebhookService, validateWebhookUrl } from "./dynamic_webhook.ts";
import type { DynamicPolicy } from "./dynamic.ts";

/**
 * The API group and version of AuditSink objects.
 *
 * @example
 * ```ts
 * obj.apiVersion === AUDIT_SINK_API_VERSION; // "auditregistration.k8s.io/v1alpha1"
 * ```
 */
export const AUDIT_SINK_API_VERSION = "auditregistration.k8s.io/v1alpha1";

/**
 * kube-apiserver's defaults for a missing `spec.webhook.throttle` or its fields.
 *
 * @example
 * ```ts
 * DEFAULT_THROTTLE.qps; // 10
 * ```
 */
export const DEFAULT_THROTTLE = { qps: 10, burst: 15 } as const;

/**
 * The service port when `service.port` is not given.
 *
 * @example
 * ```ts
 * service.port ?? DEFAULT_SERVICE_PORT; // 443
 * ```
 */
export const DEFAULT_SERVICE_PORT = 443;

/**
 * `spec.webhook.clientConfig.service`: an in-cluster Service.
 *
 * @example
 * ```ts
 * const s: ServiceReference = { namespace: "audit", name: "collector", path: "/events", port: 443 };
 * ```
 */
export interface ServiceReference {
  readonly namespace: string;
  readonly name: string;
  readonly path?: string;
  /** Defaulted to 443. */
  readonly port: number;
}

/**
 * An AuditSink after defaulting and validation.
 *
 * @example
 * ```ts
 * const { sink } = readAuditSink(obj);
 * sink?.spec.webhook.throttle.qps; // 10 when not given
 * ```
 */
export interface AuditSink {
  readonly apiVersion: typeof AUDIT_SINK_API_VERSION;
  readonly kind: "AuditSink";
  readonly metadata: { readonly name: string };
  readonly spec: {
    readonly policy: DynamicPolicy;
    readonly webhook: {
      readonly throttle: { readonly qps: number; readonly burst: number };
      readonly clientConfig: {
        readonly url?: string;
        readonly service?: ServiceReference;
        /** The PEM text `caBundle` decodes to (base64 in the object, as Go writes []byte). */
        readonly caBundle?: string;
      };
    };
  };
}

export type { FieldError } from "./dynamic_errors.ts";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `ValidatePolicy` of an AuditSink: stages valid, level required and valid, and stages
 * required unless the level is None (that error alone is then reported, as upstream does).
 *
 * @example
 * ```ts
 * validateDynamicPolicy(["policy"], { level: "Metadata", stages: [] });
 * // [{ path: ["policy", "stages"], message: "Required value" }]
 * ```
 */
export function validateDynamicPolicy(
  path: KeyPath,
  policy: { level?: unknown; stages?: readonly unknown[] },
): FieldError[] {
  const errs: FieldError[] = [];
  const stages = policy.stages ?? [];
  stages.forEach((s, i) => {
    if (!(STAGES as readonly unknown[]).includes(s)) {
      errs.push(
        invalid([...path, "stages", i], s, `allowed stages are ${[...STAGES].sort().join(",")}`),
      );
    }
  });
  const level = policy.level;
  if (level === undefined || level === "") errs.push(required([...path, "level"]));
  else if (!(LEVELS as readonly unknown[]).includes(level)) {
    errs.push(notSupported([...path, "level"], level, [...LEVELS].sort()));
  }
  if (level !== "None" && stages.length === 0) return [required([...path, "stages"])];
  return errs;
}

/** Reads a field of an expected JSON type, recording a type error when it is not one. */
class Reader {
  readonly errors: FieldError[] = [];

  obj(v: unknown, path: KeyPath): Obj | undefined {
    if (v === undefined || v === null) return undefined;
    if (isObj(v)) return v;
    this.errors.push(invalid(path, v, "must be an object"));
    return undefined;
  }

  str(v: unknown, path: KeyPath): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    this.errors.push(invalid(path, v, "must be a string"));
    return undefined;
  }

  int(v: unknown, path: KeyPath): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "number" && Number.isSafeInteger(v)) return v;
    this.errors.push(invalid(path, v, "must be an integer"));
    return undefined;
  }

  list(v: unknown, path: KeyPath): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v;
    this.errors.push(invalid(path, v, "must be a list"));
    return undefined;
  }
}

/**
 * Decodes a `caBundle` (base64, as Go encodes []byte in JSON and YAML) to text.
 */
function decodeBase64(v: string): string | undefined {
  const clean = v.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined;
  try {
    const bin = atob(clean);
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(bin, (c) => c.charCodeAt(0)),
    );
  } catch {
    return undefined;
  }
}

/**
 * Reads one object as an AuditSink: checks `apiVersion` and `kind`, applies the v1alpha1
 * defaults and validates it. Returns the sink, or every error found (paths are relative to
 * the object).
 *
 * @example
 * ```ts
 * const { sink, errors } = readAuditSink({
 *   apiVersion: "auditregistration.k8s.io/v1alpha1", kind: "AuditSink",
 *   metadata: { name: "team-a" },
 *   spec: { policy: { level: "Metadata", stages: ["ResponseComplete"] },
 *           webhook: { clientConfig: { url: "https://collector.example.com/audit" } } },
 * });
 * ```
 */
export function readAuditSink(obj: unknown): { sink?: AuditSink; errors: FieldError[] } {
  const r = new Reader();
  const errs = r.errors;
  if (!isObj(obj)) return { errors: [invalid([], obj, "must be an object")] };
  if (obj.apiVersion !== AUDIT_SINK_API_VERSION) {
    errs.push(invalid(["apiVersion"], obj.apiVersion, `must be ${AUDIT_SINK_API_VERSION}`));
  }
  if (obj.kind !== "AuditSink") errs.push(invalid(["kind"], obj.kind, "must be AuditSink"));

  const meta = r.obj(obj.metadata, ["metadata"]) ?? {};
  const name = r.str(meta.name, ["metadata", "name"]) ?? "";
  if (name === "") {
    errs.push(required(["metadata", "name"], "name or generateName is required"));
  } else {
    for (const f of dns1123Subdomain(name)) errs.push(invalid(["metadata", "name"], name, f));
  }
  const namespace = r.str(meta.namespace, ["metadata", "namespace"]);
  if (namespace) {
    errs.push({ path: ["metadata", "namespace"], message: "Forbidden: not allowed on this type" });
  }

  const spec = r.obj(obj.spec, ["spec"]) ?? {};
  const pol = r.obj(spec.policy, ["spec", "policy"]) ?? {};
  const level = r.str(pol.level, ["spec", "policy", "level"]);
  const rawStages = r.list(pol.stages, ["spec", "policy", "stages"]) ?? [];
  errs.push(...validateDynamicPolicy(["spec", "policy"], { level, stages: rawStages }));

  const hook = r.obj(spec.webhook, ["spec", "webhook"]) ?? {};
  const at = ["spec", "webhook"];
  const rawThrottle = r.obj(hook.throttle, [...at, "throttle"]);
  const qps = r.int(rawThrottle?.qps, [...at, "throttle", "qps"]) ?? DEFAULT_THROTTLE.qps;
  const burst = r.int(rawThrottle?.burst, [...at, "throttle", "burst"]) ?? DEFAULT_THROTTLE.burst;
  if (qps <= 0) {
    errs.push(invalid([...at, "throttle", "qps"], qps, "qps must be a positive number"));
  }
  if (burst <= 0) {
    errs.push(invalid([...at, "throttle", "burst"], burst, "burst must be a positive number"));
  }

  const cc = r.obj(hook.clientConfig, [...at, "clientConfig"]) ?? {};
  const ccAt = [...at, "clientConfig"];
  const url = r.str(cc.url, [...ccAt, "url"]);
  const rawSvc = r.obj(cc.service, [...ccAt, "service"]);
  let service: ServiceReference | undefined;
  if (rawSvc) {
    const sAt = [...ccAt, "service"];
    service = {
      namespace: r.str(rawSvc.namespace, [...sAt, "namespace"]) ?? "",
      name: r.str(rawSvc.name, [...sAt, "name"]) ?? "",
      path: r.str(rawSvc.path, [...sAt, "path"]),
      port: r.int(rawSvc.port, [...sAt, "port"]) ?? DEFAULT_SERVICE_PORT,
    };
  }
  if ((url === undefined) === (rawSvc === undefined)) {
    errs.push(required(ccAt, "exactly one of url or service is required"));
  } else if (url !== undefined) {
    errs.push(...validateWebhookUrl([...ccAt, "url"], url));
  } else if (service) {
    errs.push(...validateWebhookService([...ccAt, "service"], service));
  }
  const rawCa = r.str(cc.caBundle, [...ccAt, "caBundle"]);
  let caBundle: string | undefined;
  if (rawCa !== undefined && rawCa !== "") {
    caBundle = decodeBase64(rawCa);
    if (caBundle === undefined) {
      errs.push(invalid([...ccAt, "caBundle"], "<bytes>", "must be base64-encoded PEM"));
    }
  }

  if (errs.length) return { errors: errs };
  return {
    errors: [],
    sink: {
      apiVersion: AUDIT_SINK_API_VERSION,
      kind: "AuditSink",
      metadata: { name },
      spec: {
        policy: { level: level as Level, stages: rawStages as Stage[] },
        webhook: {
          throttle: { qps, burst },
          clientConfig: { url, service, caBundle },
        },
      },
    },
  };
}
