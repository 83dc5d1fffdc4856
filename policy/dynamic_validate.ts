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

/**
 * One thing wrong with an object, at a field path of it.
 *
 * @example
 * ```ts
 * const e: FieldError = { path: ["spec", "policy", "level"], message: "Required value" };
 * ```
 */
export interface FieldError {
  readonly path: KeyPath;
  readonly message: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Go's `%v`/`%q` of a value in a field error. */
function shown(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

const invalid = (path: KeyPath, value: unknown, why: string): FieldError => ({
  path,
  message: `Invalid value: ${shown(value)}: ${why}`,
});
const required = (path: KeyPath, why = ""): FieldError => ({
  path,
  message: why ? `Required value: ${why}` : "Required value",
});

const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
const DNS1123_SUBDOMAIN_MAX = 253;

/**
 * apimachinery's `IsDNS1123Subdomain`: what is wrong with `v` as a DNS subdomain name.
 *
 * @example
 * ```ts
 * dns1123Subdomain("--bad"); // ["a lowercase RFC 1123 subdomain must consist of ..."]
 * ```
 */
export function dns1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > DNS1123_SUBDOMAIN_MAX) {
    errs.push(`must be no more than ${DNS1123_SUBDOMAIN_MAX} characters`);
  }
  if (!DNS1123_SUBDOMAIN.test(v)) {
    errs.push(
      "a DNS-1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
        "and must start and end with an alphanumeric character (e.g. 'example.com', regex " +
        `used for validation is '${DNS1123_LABEL}(\\.${DNS1123_LABEL})*')`,
    );
  }
  return errs;
}

/**
 * The parts of a URL as Go's `net/url.Parse` splits them (scheme, user info, host, query,
 * fragment), without its escaping rules: what the webhook URL checks look at.
 */
function splitUrl(raw: string): {
  scheme: string;
  user?: string;
  host: string;
  path: string;
  query: string;
  fragment: string;
} {
  let rest = raw;
  let fragment = "";
  const hash = rest.indexOf("#");
  if (hash >= 0) [rest, fragment] = [rest.slice(0, hash), rest.slice(hash + 1)];
  let scheme = "";
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
  if (m) [scheme, rest] = [m[1].toLowerCase(), rest.slice(m[0].length)];
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) [rest, query] = [rest.slice(0, q), rest.slice(q + 1)];
  let host = "";
  let user: string | undefined;
  if (rest.startsWith("//")) {
    const end = rest.indexOf("/", 2);
    let authority = end < 0 ? rest.slice(2) : rest.slice(2, end);
    rest = end < 0 ? "" : rest.slice(end);
    const at = authority.lastIndexOf("@");
    if (at >= 0) [user, authority] = [authority.slice(0, at), authority.slice(at + 1)];
    host = authority;
  }
  return { scheme, user, host, path: rest, query, fragment };
}

const URL_FORM = "; desired format: https://host[/path]";

/**
 * `ValidateWebhookURL` with `forceHttps` false, as AuditSinks were validated: a host, no
 * user info, fragment or query. auditpipe also refuses schemes other than http and https,
 * which kube-apiserver accepted and then failed to send to.
 *
 * @example
 * ```ts
 * validateWebhookUrl(["url"], "https://example.com?arg=value");
 * // [{ path: ["url"], message: 'Invalid value: "arg=value": query parameters are not permitted in the URL' }]
 * ```
 */
export function validateWebhookUrl(path: KeyPath, raw: string): FieldError[] {
  const errs: FieldError[] = [];
  const u = splitUrl(raw);
  if (u.host === "") errs.push(invalid(path, u.host, "host must be provided" + URL_FORM));
  if (u.user !== undefined) {
    errs.push(invalid(path, u.user, "user information is not permitted in the URL"));
  }
  if (u.fragment !== "") {
    errs.push(invalid(path, u.fragment, "fragments are not permitted in the URL"));
  }
  if (u.query !== "") {
    errs.push(invalid(path, u.query, "query parameters are not permitted in the URL"));
  }
  if (u.host !== "" && u.scheme !== "https" && u.scheme !== "http") {
    errs.push(invalid(path, u.scheme, "only http and https URLs can be posted to" + URL_FORM));
  } else if (errs.length === 0 && !URL.canParse(raw)) {
    errs.push(required(path, "url must be a valid URL" + URL_FORM));
  }
  return errs;
}

/**
 * `ValidateWebhookService`: name and namespace given, a valid port, and a path that starts
 * with `/` whose segments are DNS-1123 subdomains.
 *
 * @example
 * ```ts
 * validateWebhookService(["service"], { namespace: "ns", name: "n", path: "//", port: 443 });
 * // [{ path: ["service", "path"], message: 'Invalid value: "//": segment[0] may not be empty' }]
 * ```
 */
export function validateWebhookService(
  path: KeyPath,
  svc: { namespace: string; name: string; path?: string; port: number },
): FieldError[] {
  const errs: FieldError[] = [];
  if (svc.name === "") errs.push(required([...path, "name"], "service name is required"));
  if (svc.namespace === "") {
    errs.push(required([...path, "namespace"], "service namespace is required"));
  }
  if (!Number.isInteger(svc.port) || svc.port < 1 || svc.port > 65535) {
    errs.push(
      invalid(
        [...path, "port"],
        svc.port,
        "port is not valid: must be between 1 and 65535, inclusive",
      ),
    );
  }
  const p = svc.path;
  if (p === undefined || p === "" || p === "/") return errs;
  const at = [...path, "path"];
  if (p === "//") return [...errs, invalid(at, p, "segment[0] may not be empty")];
  if (!p.startsWith("/")) errs.push(invalid(at, p, "must start with a '/'"));
  let check = p.slice(1);
  if (check.endsWith("/")) check = check.slice(0, -1);
  check.split("/").forEach((step, i) => {
    if (step === "") {
      errs.push(invalid(at, p, `segment[${i}] may not be empty`));
      return;
    }
    for (const f of dns1123Subdomain(step)) errs.push(invalid(at, p, `segment[${i}]: ${f}`));
  });
  return errs;
}

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
    errs.push({
      path: [...path, "level"],
      message: `Unsupported value: ${shown(level)}: supported values: ${
        [...LEVELS].sort().map((l) => `"${l}"`).join(", ")
      }`,
    });
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
