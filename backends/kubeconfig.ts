/**
 * Reading the kubeconfig that says where and how the webhook sink posts, as kube-apiserver's
 * `--audit-webhook-config-file` is read (client-go `tools/clientcmd`): only that file,
 * `current-context` selects the cluster and the user, relative paths are resolved against the
 * file's directory, and conflicting settings are errors instead of silent overrides.
 *
 * What the webhook sink cannot do is refused at load time with a clear error rather than
 * half-honoured at send time: `proxy-url`, impersonation, and exec/auth-provider credential
 * plugins. (`insecure-skip-tls-verify` and `tls-server-name` are honoured through
 * `node:https`, since Deno's own HTTP client has no switch for either.)
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { dirname, isAbsolute, join, resolve } from "node:path";

/** Where and how to post: the part of a kubeconfig the webhook sink uses. */
export interface WebhookTarget {
  /**
   * Scheme, host and cleaned path of `server` (trailing `/` removed, `/` if none). The query
   * is empty: the sink sets `timeout=<timeout>` per request, as client-go does.
   */
  url: URL;
  /** PEM CA certificates to verify the server with (https only). */
  caCerts?: string[];
  /** PEM client certificate (chain) for mutual TLS (https only); set together with `key`. */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
  /** Request headers from the user's credentials (https only, as in client-go). */
  headers: { Authorization?: string };
  /**
   * Absolute path of `tokenFile`, when set: the sink re-reads it (at most once a minute, as
   * client-go's cached file token source does) so rotated tokens are picked up.
   */
  tokenFile?: string;
  /** `insecure-skip-tls-verify`: accept any server certificate (https only). */
  insecureSkipTLSVerify?: boolean;
  /** `tls-server-name`: the name the server certificate must be valid for (https only). */
  tlsServerName?: string;
  /**
   * Trust `caCerts` only, not the system roots as well (an AuditSink's `caBundle`, as
   * client-go's `CAData` does); https only.
   */
  onlyCaCerts?: boolean;
  /** Things that are ignored, not fatal; the sink logs them once at startup. */
  warnings: string[];
  /** Files the kubeconfig names (CA, client certificate and key, token file). */
  files: string[];
}

/**
 * A kubeconfig that cannot be used. The message starts with the file and, when one field is
 * at fault, names it (`users[0].user: ...`).
 *
 * @example
 * ```ts
 * try {
 *   await loadKubeconfig("/etc/auditpipe/siem.kubeconfig");
 * } catch (e) {
 *   if (e instanceof KubeconfigError) console.error(e.message);
 * }
 * ```
 */
export class KubeconfigError extends Error {
  override name = "KubeconfigError";
  /**
   * @param message the whole message
   * @param file the kubeconfig
   * @param field the field at fault, e.g. `users[0].user.token`, if one is
   */
  constructor(
    message: string,
    readonly file: string,
    readonly field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Reads a file a kubeconfig refers to; injectable for tests. */
export type ReadFile = (path: string) => Promise<Uint8Array | string>;

/** Options of {@linkcode loadKubeconfig}. */
export interface LoadKubeconfigOptions {
  /** Reads the kubeconfig and the files it names; defaults to `Deno.readFile`. */
  readFile?: ReadFile;
}

const CLUSTER_KEYS = new Set([
  "server",
  "certificate-authority",
  "certificate-authority-data",
  "insecure-skip-tls-verify",
  "tls-server-name",
  "proxy-url",
  "disable-compression",
  "extensions",
]);
const USER_KEYS = new Set([
  "client-certificate",
  "client-certificate-data",
  "client-key",
  "client-key-data",
  "token",
  "tokenFile",
  "username",
  "password",
  "as",
  "as-uid",
  "as-groups",
  "as-user-extra",
  "auth-provider",
  "exec",
  "extensions",
]);

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parsing state: the file name for messages and the directory relative paths start from. */
class Ctx {
  readonly dir: string;
  /** Every file read on the kubeconfig's behalf, for `auditpipe permissions`. */
  readonly files: string[] = [];
  readonly readFile: ReadFile;
  constructor(readonly file: string, readFile: ReadFile, readonly warnings: string[]) {
    this.dir = dirname(resolve(file));
    this.readFile = (path) => {
      this.files.push(path);
      return readFile(path);
    };
  }
  fail(field: string | undefined, detail: string, options?: ErrorOptions): never {
    const msg = field ? `${this.file}: ${field}: ${detail}` : `${this.file}: ${detail}`;
    throw new KubeconfigError(msg, this.file, field, options);
  }
  path(p: string): string {
    return isAbsolute(p) ? p : join(this.dir, p);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return typeof v === "string" ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

/** A string field; absent, null and "" are all "not set", as Go's zero value. */
function str(c: Ctx, o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") {
    // Numbers and booleans are refused, not converted: a long numeric token would lose digits.
    c.fail(where ? `${where}.${key}` : key, `must be a string, got ${describe(v)} (quote it)`);
  }
  return v;
}

function bool(c: Ctx, o: Obj, key: string, where: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") {
    c.fail(`${where}.${key}`, `must be true or false, got ${describe(v)}`);
  }
  return v;
}

/** Which keys a mapping has set (non-empty), for conflict checks. */
function has(o: Obj, key: string): boolean {
  const v = o[key];
  return v !== undefined && v !== null && v !== "" && v !== false;
}

/**
 * A named list (`clusters`, `users`, `contexts`) as name -> [index, inner object], refusing
 * duplicates as client-go's conversion does.
 */
function namedList(c: Ctx, root: Obj, list: string, inner: string): Map<string, [number, Obj]> {
  const out = new Map<string, [number, Obj]>();
  const v = root[list];
  if (v === undefined || v === null) return out;
  if (!Array.isArray(v)) c.fail(list, `must be a list, got ${describe(v)}`);
  v.forEach((item, i) => {
    const at = `${list}[${i}]`;
    if (!isObj(item)) c.fail(at, `must be a mapping, got ${describe(item)}`);
    const name = item.name;
    if (typeof name !== "string" || name === "") c.fail(`${at}.name`, "must be a non-empty string");
    if (out.has(name)) {
      c.fail(
        `${at}.name`,
        `duplicate name ${JSON.stringify(name)} (also ${list}[${out.get(name)![0]}])`,
      );
    }
    const body = item[inner] ?? {};
    if (!isObj(body)) c.fail(`${at}.${inner}`, `must be a mapping, got ${describe(body)}`);
    out.set(name, [i, body]);
  });
  return out;
}

function decodeBase64(c: Ctx, field: string, text: string): string {
  let bin: string;
  try {
    bin = atob(text.replace(/\s+/g, ""));
  } catch {
    c.fail(field, "is not valid base64");
  }
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

async function readText(c: Ctx, field: string, path: string): Promise<string> {
  try {
    const data = await c.readFile(path);
    return typeof data === "string" ? data : new TextDecoder().decode(data);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    c.fail(field, `cannot read ${path}: ${why}`, { cause: e });
  }
}

/** PEM material from `<key>` (a file) or `<key>-data` (base64), never both. */
async function pem(
  c: Ctx,
  o: Obj,
  where: string,
  key: string,
  block: RegExp,
  kind: string,
): Promise<string | undefined> {
  const file = str(c, o, key, where);
  const data = str(c, o, `${key}-data`, where);
  if (file !== undefined && data !== undefined) {
    c.fail(where, `${key}-data and ${key} are both set`);
  }
  let text: string;
  let field: string;
  if (data !== undefined) {
    field = `${where}.${key}-data`;
    text = decodeBase64(c, field, data);
  } else if (file !== undefined) {
    field = `${where}.${key}`;
    text = await readText(c, field, c.path(file));
  } else {
    return undefined;
  }
  if (!block.test(text)) c.fail(field, `does not contain a PEM ${kind}`);
  return text;
}

const CERT_PEM = /-----BEGIN CERTIFICATE-----/;
const KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Go's `path.Clean` for a URL path, minus the trailing slash, `/` when nothing is left. */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

/**
 * `server` as a URL, following client-go's `DefaultServerURL`: a value without `scheme://host`
 * is a `host[:port]` and gets https when TLS settings are present, else http.
 */
function serverUrl(c: Ctx, server: string, where: string, defaultTls: boolean): URL {
  const field = `${where}.server`;
  let url: URL | undefined;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]/.test(server)) {
    try {
      url = new URL(server);
    } catch {
      c.fail(field, `${JSON.stringify(server)} is not a valid URL`);
    }
  } else {
    try {
      url = new URL(`${defaultTls ? "https" : "http"}://${server}`);
    } catch {
      c.fail(field, `${JSON.stringify(server)} is not a valid URL or host:port`);
    }
    if (url.pathname !== "/" || url.search !== "") {
      c.fail(field, `must be a URL or a host:port pair, got ${JSON.stringify(server)}`);
    }
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    c.fail(field, `scheme must be http or https, got ${JSON.stringify(url.protocol.slice(0, -1))}`);
  }
  if (url.username !== "" || url.password !== "") {
    c.fail(field, "must not contain credentials; use the user's username/password or token");
  }
  url.pathname = cleanPath(url.pathname);
  url.search = "";
  url.hash = "";
  return url;
}

/** A token that can go in a header as is; fetch would refuse it on every attempt otherwise. */
function headerSafe(c: Ctx, field: string, v: string): string {
  if (/[^\t\x20-\x7e\x80-\xff]/.test(v)) {
    c.fail(field, "contains a line break, control or non-Latin-1 character");
  }
  return v;
}

function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

/** A token file's token as client-go's file token source reads it: trimmed, not empty. */
async function readToken(c: Ctx, field: string, path: string): Promise<string> {
  const token = (await readText(c, field, path)).trim();
  if (token === "") c.fail(field, `${path} is empty`);
  return headerSafe(c, field, token);
}

/**
 * Parses kubeconfig text into the webhook target of its current context, reading the files it
 * names through `readFile` (relative to `file`'s directory).
 *
 * @example
 * ```ts
 * const target = await parseKubeconfig(
 *   await Deno.readTextFile("/etc/auditpipe/siem.kubeconfig"),
 *   "/etc/auditpipe/siem.kubeconfig",
 * );
 * target.url.href; // "https://siem.example:8443/audit"
 * ```
 */
export async function parseKubeconfig(
  text: string,
  file: string,
  readFile: ReadFile = Deno.readFile,
): Promise<WebhookTarget> {
  const c: Ctx = new Ctx(file, readFile, []);
  let root: unknown;
  try {
    // YAML 1.1 as Go's yaml reads kubeconfigs (yes/no are booleans there too).
    root = parseYaml(text, { version: "1.1" });
  } catch (e) {
    c.fail(undefined, `not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  if (root === null || root === undefined) c.fail(undefined, "is empty");
  if (!isObj(root)) c.fail(undefined, `must be a mapping, got ${describe(root)}`);
  if (root.kind !== undefined && root.kind !== "Config") {
    c.fail("kind", `must be Config, got ${describe(root.kind)}`);
  }

  const clusters = namedList(c, root, "clusters", "cluster");
  const users = namedList(c, root, "users", "user");
  const contexts = namedList(c, root, "contexts", "context");

  const current = str(c, root, "current-context", "");
  if (current === undefined) {
    // client-go ends up with an empty cluster here and says "no configuration has been
    // provided"; naming the missing key is more use.
    c.fail("current-context", "is not set; it must name one of contexts[].name");
  }
  const ctxEntry = contexts.get(current);
  if (!ctxEntry) {
    c.fail("current-context", `context ${JSON.stringify(current)} is not in contexts`);
  }
  const ctxWhere = `contexts[${ctxEntry[0]}].context`;
  const clusterName = str(c, ctxEntry[1], "cluster", ctxWhere);
  if (clusterName === undefined) c.fail(`${ctxWhere}.cluster`, "is not set");
  const clusterEntry = clusters.get(clusterName);
  if (!clusterEntry) {
    c.fail(`${ctxWhere}.cluster`, `cluster ${JSON.stringify(clusterName)} is not in clusters`);
  }
  const userName = str(c, ctxEntry[1], "user", ctxWhere);
  let userEntry: [number, Obj] | undefined;
  if (userName !== undefined) {
    userEntry = users.get(userName);
    // client-go silently runs without credentials here; a typo should not do that.
    if (!userEntry) c.fail(`${ctxWhere}.user`, `user ${JSON.stringify(userName)} is not in users`);
  }

  // --- cluster ---
  const cw = `clusters[${clusterEntry[0]}].cluster`;
  const cl = clusterEntry[1];
  for (const k of Object.keys(cl)) {
    if (!CLUSTER_KEYS.has(k)) c.warnings.push(`${cw}.${k}: unknown key, ignored`);
  }
  const server = str(c, cl, "server", cw);
  if (server === undefined) c.fail(`${cw}.server`, "is not set");
  const insecure = bool(c, cl, "insecure-skip-tls-verify", cw);
  bool(c, cl, "disable-compression", cw);
  const ca = await pem(c, cl, cw, "certificate-authority", CERT_PEM, "certificate");
  if (insecure && ca !== undefined) {
    c.fail(cw, "insecure-skip-tls-verify is set together with a certificate authority");
  }
  if (has(cl, "proxy-url")) {
    c.fail(
      `${cw}.proxy-url`,
      "is not supported: the webhook sink connects to the server directly " +
        "(HTTP_PROXY/HTTPS_PROXY/NO_PROXY from the environment still apply)",
    );
  }

  // --- user ---
  const u: Obj = userEntry?.[1] ?? {};
  const uw = userEntry ? `users[${userEntry[0]}].user` : "users[?].user";
  for (const k of Object.keys(u)) {
    if (!USER_KEYS.has(k)) c.warnings.push(`${uw}.${k}: unknown key, ignored`);
  }
  if (has(u, "exec")) c.fail(`${uw}.exec`, "exec credential plugins are not supported");
  if (has(u, "auth-provider")) c.fail(`${uw}.auth-provider`, "auth providers are not supported");
  for (const k of ["as", "as-uid", "as-groups", "as-user-extra"]) {
    if (has(u, k)) c.fail(`${uw}.${k}`, "impersonation is not supported");
  }
  const hasCert = has(u, "client-certificate") || has(u, "client-certificate-data");
  const hasKey = has(u, "client-key") || has(u, "client-key-data");
  if (hasCert && !hasKey) {
    c.fail(uw, "client-certificate(-data) is set without client-key(-data)");
  }
  if (hasKey && !hasCert) {
    c.fail(uw, "client-key(-data) is set without client-certificate(-data)");
  }
  const cert = await pem(c, u, uw, "client-certificate", CERT_PEM, "certificate");
  const key = await pem(c, u, uw, "client-key", KEY_PEM, "private key");

  const token = str(c, u, "token", uw);
  const tokenFile = str(c, u, "tokenFile", uw);
  const username = str(c, u, "username", uw);
  const password = str(c, u, "password", uw);
  if ((token !== undefined || tokenFile !== undefined) && (username ?? password) !== undefined) {
    c.fail(uw, "username/password and token/tokenFile are both set; only one may be");
  }
  if (password !== undefined && username === undefined) {
    c.fail(uw, "password is set without username");
  }

  // --- TLS-dependent parts ---
  const tlsSettings = ca !== undefined || cert !== undefined || insecure === true;
  const url = serverUrl(c, server, cw, tlsSettings);
  const https = url.protocol === "https:";

  const tlsServerName = str(c, cl, "tls-server-name", cw);

  const target: WebhookTarget = { url, headers: {}, warnings: c.warnings, files: c.files };
  if (https && insecure) {
    target.insecureSkipTLSVerify = true;
    c.warnings.push(`${cw}.insecure-skip-tls-verify: the server's certificate is not verified`);
  }
  if (https && tlsServerName !== undefined) target.tlsServerName = tlsServerName;
  const hasCreds = token !== undefined || tokenFile !== undefined || username !== undefined;
  if (!https) {
    // client-go reads credentials and TLS settings only for https servers; over http they are
    // dropped, never sent in clear. Say so instead of dropping them silently.
    if (hasCreds || tlsSettings) {
      c.warnings.push(
        `${cw}.server: ${url.protocol}// server: credentials and TLS settings of the context ` +
          `are not used (only https connections carry them)`,
      );
    }
    return target;
  }
  if (ca !== undefined) target.caCerts = [ca];
  if (cert !== undefined) {
    target.cert = cert;
    target.key = key;
  }
  if (tokenFile !== undefined) {
    const path = c.path(tokenFile);
    target.tokenFile = path;
    if (token !== undefined) {
      // As client-go: the static token stands in while the file cannot be read.
      try {
        target.headers.Authorization = `Bearer ${await readToken(c, `${uw}.tokenFile`, path)}`;
      } catch (e) {
        c.warnings.push(`${(e as Error).message}; using token until it can be read`);
        target.headers.Authorization = `Bearer ${headerSafe(c, `${uw}.token`, token)}`;
      }
    } else {
      target.headers.Authorization = `Bearer ${await readToken(c, `${uw}.tokenFile`, path)}`;
    }
  } else if (token !== undefined) {
    target.headers.Authorization = `Bearer ${headerSafe(c, `${uw}.token`, token)}`;
  } else if (username !== undefined) {
    // Base64-encoded, so any characters will do.
    target.headers.Authorization = basicAuth(username, password ?? "");
  }
  return target;
}

/**
 * Reads a kubeconfig file and returns the webhook target of its current context.
 *
 * @example
 * ```ts
 * const target = await loadKubeconfig("/etc/auditpipe/siem.kubeconfig");
 * for (const w of target.warnings) log.warn(w);
 * ```
 */
export async function loadKubeconfig(
  path: string,
  opts: LoadKubeconfigOptions = {},
): Promise<WebhookTarget> {
  const readFile = opts.readFile ?? Deno.readFile;
  let data: Uint8Array | string;
  try {
    data = await readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new KubeconfigError(`file not found: ${path}`, path, undefined, { cause: e });
    }
    throw new KubeconfigError(`${path}: cannot read: ${(e as Error).message}`, path, undefined, {
      cause: e,
    });
  }
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  return parseKubeconfig(text, path, readFile);
}

/**
 * Reads a token file the way the webhook sink refreshes it: trimmed, and an error when empty.
 *
 * @example
 * ```ts
 * const auth = `Bearer ${await readTokenFile("/var/run/secrets/token")}`;
 * ```
 */
export async function readTokenFile(
  path: string,
  readFile: ReadFile = Deno.readFile,
): Promise<string> {
  return await readToken(new Ctx(path, readFile, []), "tokenFile", path);
}
