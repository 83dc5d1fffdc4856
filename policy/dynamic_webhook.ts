/**
 * Validating where an AuditSink posts, as k8s.io/apiserver `pkg/util/webhook/validation.go`
 * validated webhook client configs (`ValidateWebhookURL` with `forceHttps` false, as AuditSinks
 * used it, and `ValidateWebhookService`), with apimachinery's `IsDNS1123Subdomain`.
 *
 * @module
 */
import type { KeyPath } from "../pipeline/core/problem.ts";
import { type FieldError, invalid, required } from "./dynamic_errors.ts";

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
