/**
 * Audit events in the shapes other tools and older clusters produce, beside kube-apiserver's
 * own log (see `apiserver_log.ts`): rule-test fixtures re-serialized with sorted keys and no
 * `apiVersion`, `audit.k8s.io/v1beta1` events with their `timestamp` fields, a v1beta1 log
 * relabelled as v1 without the fields v1 always has, impersonation and 403/404 answers, Azure
 * AKS diagnostic-log envelopes (the event as a JSON string inside `records[].properties.log`),
 * pretty-printed events with a UTF-8 BOM and odd endings, and one policy logging three
 * resources at three levels. Each is a file's text, so that readers see the bytes as they
 * would on disk. Deterministic: no clock, no randomness beyond a fixed seed.
 *
 * @module
 */
import { Rand } from "./rand.ts";

/** A sample file: a name (with folders) and its exact text. */
export interface SampleFile {
  readonly name: string;
  readonly text: string;
}

/** The UTF-8 byte order mark some Windows tools write first. */
export const BOM = "\ufeff";

type Obj = Record<string, unknown>;

/** `o` with every object's keys sorted, as Python's `json.dumps(sort_keys=True)` leaves it. */
function sortKeys(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(sortKeys);
  if (o === null || typeof o !== "object") return o;
  const out: Obj = {};
  for (const k of Object.keys(o).sort()) out[k] = sortKeys((o as Obj)[k]);
  return out;
}

const second = (ms: number) => new Date(ms).toISOString().slice(0, 19) + "Z";
const micro = (ms: number, us: number) =>
  new Date(ms).toISOString().slice(0, 23) + String(us).padStart(3, "0") + "Z";

function container(r: Rand, i: number, extra: Obj = {}): Obj {
  return {
    name: i === 0 ? "nginx" : `sidecar-${i}`,
    image: i === 0 ? "nginx:1.15" : `busybox:1.${r.range(20, 36)}`,
    ports: [{ containerPort: 80 + i, protocol: "TCP" }],
    resources: {},
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    imagePullPolicy: "IfNotPresent",
    ...extra,
  };
}

/** One rule-test scenario: what was done, by whom, with which objects. */
interface Scenario {
  name: string;
  verb: string;
  resource: string;
  group?: string;
  ns?: string;
  obj?: string;
  sub?: string;
  level: "Metadata" | "Request" | "RequestResponse";
  stage?: string;
  code?: number;
  user?: Obj;
  body?: (r: Rand) => Obj;
  /** Keeps the apiserver's field order and `apiVersion: audit.k8s.io/v1beta1`. */
  v1beta1?: boolean;
  /** A `audit.k8s.io/v1` Metadata event from a newer capture, with a user agent. */
  v1?: boolean;
}

const pod =
  (name: string, ns: string, containers: (r: Rand) => Obj[], spec: Obj = {}) => (r: Rand): Obj => ({
    kind: "Pod",
    apiVersion: "v1",
    metadata: { name, namespace: ns, creationTimestamp: null, labels: { app: name } },
    spec: {
      containers: containers(r),
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      securityContext: {},
      schedulerName: "default-scheduler",
      ...spec,
    },
    status: {},
  });
const privileged = { securityContext: { privileged: true } };
const role = (name: string, rules: Obj[]) => (): Obj => ({
  kind: "ClusterRole",
  apiVersion: "rbac.authorization.k8s.io/v1",
  metadata: { name, creationTimestamp: null },
  rules,
});
const namespace = (name: string) => (): Obj => ({
  kind: "Namespace",
  apiVersion: "v1",
  metadata: { name, creationTimestamp: null },
  spec: {},
  status: { phase: "Active" },
});

const binding = (name: string, subject: Obj, clusterRole: string) => (): Obj => ({
  kind: "ClusterRoleBinding",
  apiVersion: "rbac.authorization.k8s.io/v1",
  metadata: { name },
  subjects: [subject],
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
});

const configMap = (name: string, data: Obj) => (): Obj => ({
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: { name, namespace: "default", creationTimestamp: null },
  data,
});

const SCENARIOS: Scenario[] = [
  {
    name: "anonymous_creates_namespace_foo",
    verb: "create",
    resource: "namespaces",
    obj: "foo",
    level: "Request",
    user: { username: "system:anonymous", groups: ["system:unauthenticated"] },
    v1beta1: true,
    body: namespace("foo"),
  },
  {
    name: "attach_cluster_admin_role",
    verb: "create",
    resource: "clusterrolebindings",
    group: "rbac.authorization.k8s.io",
    obj: "ui-admin",
    level: "RequestResponse",
    body: binding(
      "ui-admin",
      { kind: "ServiceAccount", name: "ui", namespace: "default" },
      "cluster-admin",
    ),
  },
  {
    name: "attach_pod",
    verb: "create",
    resource: "pods",
    sub: "attach",
    ns: "default",
    obj: "nginx",
    level: "Request",
    stage: "ResponseStarted",
    code: 101,
  },
  {
    name: "exec_pod",
    verb: "create",
    resource: "pods",
    sub: "exec",
    ns: "default",
    obj: "nginx",
    level: "Request",
    stage: "ResponseStarted",
    code: 101,
  },
  {
    name: "create_cluster_role_pod_exec",
    verb: "create",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "pod-exec",
    level: "RequestResponse",
    body: role("pod-exec", [{ verbs: ["create"], apiGroups: [""], resources: ["pods/exec"] }]),
  },
  {
    name: "create_cluster_role_wildcard_resources",
    verb: "create",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "wildcard-resources",
    level: "RequestResponse",
    body: role("wildcard-resources", [{ verbs: ["get"], apiGroups: ["*"], resources: ["*"] }]),
  },
  {
    name: "create_cluster_role_wildcard_verbs",
    verb: "create",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "wildcard-verbs",
    level: "RequestResponse",
    body: role("wildcard-verbs", [{ verbs: ["*"], apiGroups: [""], resources: ["pods"] }]),
  },
  {
    name: "create_cluster_role_write_privileges",
    verb: "create",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "writer",
    level: "RequestResponse",
    body: role("writer", [{
      verbs: ["create", "update", "patch", "delete"],
      apiGroups: [""],
      resources: ["pods", "services", "configmaps"],
    }]),
  },
  {
    name: "create_clusterrole",
    verb: "create",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "reader",
    level: "RequestResponse",
    body: role("reader", [{
      verbs: ["get", "list", "watch"],
      apiGroups: [""],
      resources: ["pods"],
    }]),
  },
  {
    name: "create_clusterrolebinding",
    verb: "create",
    resource: "clusterrolebindings",
    group: "rbac.authorization.k8s.io",
    obj: "reader-binding",
    level: "RequestResponse",
    body: binding("reader-binding", { kind: "User", name: "some-user" }, "reader"),
  },
  {
    name: "create_configmap",
    verb: "create",
    resource: "configmaps",
    ns: "default",
    obj: "my-config",
    level: "RequestResponse",
    body: configMap("my-config", {
      "ui.properties": "color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n",
    }),
  },
  {
    name: "create_configmap_no_sensitive_values",
    verb: "create",
    resource: "configmaps",
    ns: "default",
    obj: "plain-config",
    level: "RequestResponse",
    v1beta1: true,
    body: configMap("plain-config", { "game.properties": "enemies=aliens\nlives=3\n" }),
  },
  {
    name: "create_deployment",
    verb: "create",
    resource: "deployments",
    group: "apps",
    ns: "default",
    obj: "nginx-deployment",
    level: "Request",
    body: (r) => ({
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "nginx-deployment", namespace: "default" },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "nginx" } },
        template: {
          metadata: { labels: { app: "nginx" } },
          spec: { containers: [container(r, 0)] },
        },
      },
    }),
  },
  {
    name: "create_kube_system_secret",
    verb: "create",
    resource: "secrets",
    ns: "kube-system",
    obj: "my-secret",
    level: "Metadata",
    v1: true,
  },
  {
    name: "create_secret",
    verb: "create",
    resource: "secrets",
    ns: "default",
    obj: "example-secret",
    level: "Metadata",
    v1: true,
  },
  {
    name: "create_service_account_token_secret",
    verb: "create",
    resource: "secrets",
    ns: "default",
    obj: "sa-token",
    level: "Metadata",
    v1: true,
  },
  {
    name: "delete_secret",
    verb: "delete",
    resource: "secrets",
    ns: "default",
    obj: "example-secret",
    level: "Metadata",
    v1: true,
    code: 200,
  },
  {
    name: "create_nginx_pod_hostnetwork",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    body: pod("nginx", "default", (r) => [container(r, 0)], { hostNetwork: true }),
  },
  {
    name: "create_nginx_pod_nohostnetwork",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    v1beta1: true,
    body: pod("nginx", "default", (r) => [container(r, 0)], { hostNetwork: false }),
  },
  {
    name: "create_nginx_pod_privileged",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    v1beta1: true,
    body: pod("nginx", "default", (r) => [container(r, 0, privileged)]),
  },
  {
    name: "create_nginx_pod_privileged_2nd_container",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    body: pod("nginx", "default", (r) => [container(r, 0), container(r, 1, privileged)]),
  },
  {
    name: "create_nginx_pod_unprivileged",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    v1beta1: true,
    body: pod(
      "nginx",
      "default",
      (r) => [container(r, 0, { securityContext: { privileged: false } })],
    ),
  },
  {
    name: "create_nginx_pod_sensitive_mount",
    verb: "create",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    body: pod(
      "nginx",
      "default",
      (r) => [container(r, 0, { volumeMounts: [{ name: "etc", mountPath: "/host/etc" }] })],
      { volumes: [{ name: "etc", hostPath: { path: "/etc", type: "" } }] },
    ),
  },
  {
    name: "create_nginx_pod_unsensitive_mount",
    verb: "get",
    resource: "pods",
    ns: "default",
    obj: "nginx",
    level: "RequestResponse",
    code: 200,
    v1beta1: true,
    user: { username: "system:node:minikube", groups: ["system:nodes", "system:authenticated"] },
  },
  {
    name: "create_pod_kube_system_namespace",
    verb: "create",
    resource: "pods",
    ns: "kube-system",
    obj: "nginx",
    level: "RequestResponse",
    body: pod("nginx", "kube-system", (r) => [container(r, 0)]),
  },
  {
    name: "create_pod_kube_public_namespace",
    verb: "create",
    resource: "pods",
    ns: "kube-public",
    obj: "nginx",
    level: "RequestResponse",
    body: pod("nginx", "kube-public", (r) => [container(r, 0)]),
  },
  {
    name: "create_nginx_service_nodeport",
    verb: "create",
    resource: "services",
    ns: "default",
    obj: "nginx",
    level: "Request",
    body: () => ({
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "nginx" },
      spec: {
        type: "NodePort",
        ports: [{ port: 80, nodePort: 30080 }],
        selector: { app: "nginx" },
      },
    }),
  },
  {
    name: "create_nginx_service_nonodeport",
    verb: "create",
    resource: "services",
    ns: "default",
    obj: "nginx",
    level: "Request",
    v1beta1: true,
    body: () => ({
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "nginx" },
      spec: { type: "ClusterIP", ports: [{ port: 80 }], selector: { app: "nginx" } },
    }),
  },
  {
    name: "create_serviceaccount",
    verb: "create",
    resource: "serviceaccounts",
    ns: "default",
    obj: "ui",
    level: "Request",
    body: () => ({ kind: "ServiceAccount", apiVersion: "v1", metadata: { name: "ui" } }),
  },
  {
    name: "create_serviceaccount_kube_system_namespace",
    verb: "create",
    resource: "serviceaccounts",
    ns: "kube-system",
    obj: "ui",
    level: "Request",
    body: () => ({ kind: "ServiceAccount", apiVersion: "v1", metadata: { name: "ui" } }),
  },
  {
    name: "delete_cluster_role_kube_aggregator",
    verb: "delete",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "system:aggregate-to-view",
    level: "RequestResponse",
    code: 200,
  },
  {
    name: "delete_clusterrole",
    verb: "delete",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "reader",
    level: "RequestResponse",
    code: 200,
  },
  {
    name: "delete_configmap",
    verb: "delete",
    resource: "configmaps",
    ns: "default",
    obj: "my-config",
    level: "RequestResponse",
    code: 200,
  },
  {
    name: "delete_deployment",
    verb: "delete",
    resource: "deployments",
    group: "apps",
    ns: "default",
    obj: "nginx-deployment",
    level: "Request",
    code: 200,
  },
  {
    name: "delete_namespace_foo",
    verb: "delete",
    resource: "namespaces",
    obj: "foo",
    level: "Request",
    code: 200,
  },
  {
    name: "delete_service",
    verb: "delete",
    resource: "services",
    ns: "default",
    obj: "nginx",
    level: "Request",
    code: 200,
  },
  {
    name: "modify_cluster_role_node_problem_detector",
    verb: "patch",
    resource: "clusterroles",
    group: "rbac.authorization.k8s.io",
    obj: "system:node-problem-detector",
    level: "RequestResponse",
    code: 200,
    body: () => ({
      rules: [{ verbs: ["get", "list", "watch"], apiGroups: [""], resources: ["nodes", "events"] }],
    }),
  },
  {
    name: "some-user_creates_namespace_foo",
    verb: "create",
    resource: "namespaces",
    obj: "foo",
    level: "Request",
    user: { username: "some-user", groups: ["system:authenticated"] },
    v1beta1: true,
    body: namespace("foo"),
  },
];

/** The event of one rule-test scenario, in the shape its capture left it. */
function scenarioEvent(r: Rand, s: Scenario, at: number): Obj {
  const v1 = s.v1 === true;
  const code = s.code ?? (s.verb === "create" ? 201 : 200);
  const ref: Obj = { resource: s.resource };
  if (s.ns) ref.namespace = s.ns;
  if (s.obj) ref.name = s.obj;
  if (s.group) ref.apiGroup = s.group;
  ref.apiVersion = "v1";
  if (s.sub) ref.subresource = s.sub;
  let uri = s.group ? `/apis/${s.group}/v1` : "/api/v1";
  if (s.ns) uri += `/namespaces/${s.ns}`;
  uri += `/${s.resource}`;
  if (s.verb !== "create" || s.sub) uri += `/${s.obj}`;
  if (s.sub) uri += `/${s.sub}?command=bash&container=nginx&stdin=true&stdout=true&tty=true`;
  const e: Obj = { kind: "Event" };
  if (v1) e.apiVersion = "audit.k8s.io/v1";
  else {
    e.apiVersion = "audit.k8s.io/v1beta1";
    e.metadata = { creationTimestamp: second(at) };
  }
  e.level = s.level;
  if (!v1) e.timestamp = second(at);
  e.auditID = r.uuid();
  e.stage = s.stage ?? "ResponseComplete";
  e.requestURI = uri;
  e.verb = s.verb;
  e.user = s.user ??
    { username: "minikube-user", groups: ["system:masters", "system:authenticated"] };
  e.sourceIPs = [v1 ? "192.168.64.1" : "192.168.99.1"];
  if (v1) e.userAgent = "kubectl/v1.17.3 (darwin/amd64) kubernetes/06ad960";
  e.objectRef = ref;
  e.responseStatus = { metadata: {}, code };
  const body = s.body?.(r);
  if (body && s.level !== "Metadata") e.requestObject = body;
  if (s.level === "RequestResponse" && s.stage === undefined) {
    const meta = (body?.metadata ?? { name: s.obj }) as Obj;
    e.responseObject = {
      ...(body ?? { kind: "Status", apiVersion: "v1" }),
      metadata: {
        ...meta,
        uid: r.uuid(),
        resourceVersion: String(r.range(100000, 400000)),
        creationTimestamp: second(at),
        selfLink: uri.split("?")[0],
      },
    };
  }
  e.requestReceivedTimestamp = micro(at, r.int(1000));
  e.stageTimestamp = micro(at + r.range(1, 9), r.int(1000));
  e.annotations = { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "" };
  // Only the v1beta1-labelled ones kept the apiserver's order; the rest went through a tool
  // that sorted keys and dropped apiVersion.
  if (s.v1beta1 || v1) return e;
  const { apiVersion: _v, ...rest } = e;
  return sortKeys(rest) as Obj;
}

/**
 * Rule-test fixtures as a detection tool's test suite keeps them: one file per scenario, one
 * event per line (one file holds six), most with sorted keys and no `apiVersion`, some
 * `audit.k8s.io/v1beta1`, a few newer `audit.k8s.io/v1` Metadata events on secrets.
 *
 * @example
 * ```ts
 * for (const f of ruleFixtures()) console.log(f.name); // "rules/attach_pod.json", ...
 * ```
 */
export function ruleFixtures(): SampleFile[] {
  const r = new Rand(2018);
  let at = Date.UTC(2018, 9, 26, 13, 13, 3);
  const files: SampleFile[] = SCENARIOS.map((s) => {
    at += r.range(5_000, 90_000);
    return { name: `rules/${s.name}.json`, text: JSON.stringify(scenarioEvent(r, s, at)) + "\n" };
  });
  const sensitive = ["aws_access_key_id", "password", "ssh-key", "token", "passphrase", "secret"];
  const lines = sensitive.map((k, i) =>
    JSON.stringify(scenarioEvent(r, {
      name: "create_configmap_sensitive_values",
      verb: "create",
      resource: "configmaps",
      ns: "default",
      obj: `my-config-${i}`,
      level: "RequestResponse",
      body: configMap(`my-config-${i}`, { [k]: `${k}=${r.hex(16)}` }),
    }, at + i * 1000))
  );
  files.push({
    name: "rules/create_configmap_sensitive_values.json",
    text: lines.join("\n") + "\n",
  });
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * An `audit.k8s.io/v1beta1` log of the Kubernetes 1.8 era: `timestamp` and
 * `metadata.creationTimestamp` instead of `requestReceivedTimestamp`/`stageTimestamp`, no
 * user agent and no annotations; an admin working on RBAC objects, often impersonating `bob`
 * and getting 403 Forbidden or 404 NotFound; `RequestReceived` for only some requests.
 * `relabelled` gives the impersonated events only, with `apiVersion` changed to
 * `audit.k8s.io/v1` and nothing else: a "v1" event missing what v1 always has.
 *
 * @example
 * ```ts
 * const lines = legacyLog().split("\n").filter((l) => l !== "");
 * ```
 */
export function legacyLog(opts: { relabelled?: boolean } = {}): string {
  const r = new Rand(2017);
  let at = Date.UTC(2017, 8, 11, 19, 55, 5);
  const lines: string[] = [];
  const kinds = ["roles", "clusterroles", "rolebindings", "clusterrolebindings"];
  for (let i = 0; i < 300; i++) {
    at += r.range(200, 6000);
    const bob = r.f() < 0.15;
    const verb = bob
      ? r.pick(["get", "list"])
      : r.pick(["create", "patch", "delete", "get", "get"]);
    const resource = bob ? r.pick(["pods", "configmaps", "secrets"]) : r.pick(kinds);
    const group = bob ? "" : "rbac.authorization.k8s.io";
    const cluster = resource.startsWith("cluster");
    const name = verb === "list" ? undefined : bob ? `${resource}-${r.int(5)}` : `audit2rbac:bob`;
    let uri = group ? `/apis/${group}/v1` : "/api/v1";
    if (!cluster) uri += "/namespaces/default";
    uri += `/${resource}`;
    if (name && verb !== "create") uri += `/${name}`;
    const discovery = !bob && r.f() < 0.05;
    const head = (stage: string): Obj => {
      const e: Obj = {
        kind: "Event",
        apiVersion: "audit.k8s.io/v1beta1",
        metadata: { creationTimestamp: second(at) },
        level: "Metadata",
        timestamp: second(at),
        auditID: id,
        stage,
        requestURI: discovery ? "/apis" : uri,
        verb: discovery ? "get" : verb,
        user: { username: "system:admin", groups: ["system:masters", "system:authenticated"] },
      };
      if (bob) e.impersonatedUser = { username: "bob", groups: ["system:authenticated"] };
      e.sourceIPs = ["::1"];
      if (!discovery) {
        const ref: Obj = { resource };
        if (!cluster) ref.namespace = "default";
        if (name) ref.name = name;
        if (group) ref.apiGroup = group;
        ref.apiVersion = "v1";
        e.objectRef = ref;
      }
      return e;
    };
    const id = r.uuid();
    if (!bob && r.f() < 0.75) lines.push(JSON.stringify(head("RequestReceived")));
    const e = head("ResponseComplete");
    const code = bob
      ? (r.f() < 0.4 ? 403 : 200)
      : verb === "create"
      ? 201
      : (verb === "get" || verb === "delete") && r.f() < 0.4
      ? 404
      : 200;
    const status: Obj = { metadata: {} };
    if (code === 403) {
      status.status = "Failure";
      status.message =
        `${resource} is forbidden: User "bob" cannot ${verb} ${resource} in the namespace "default"`;
      status.reason = "Forbidden";
      status.details = { kind: resource };
    } else if (code === 404) {
      status.status = "Failure";
      status.message = `${resource}.rbac.authorization.k8s.io "${name}" not found`;
      status.reason = "NotFound";
      status.details = { name, group, kind: resource };
    }
    status.code = code;
    e.responseStatus = status;
    lines.push(JSON.stringify(e));
  }
  if (!opts.relabelled) return lines.join("\n") + "\n";
  return lines.filter((l) => l.includes('"impersonatedUser"'))
    .map((l) => l.replace('"audit.k8s.io/v1beta1"', '"audit.k8s.io/v1"')).join("\n") + "\n";
}

/** An AKS event: a controller's discovery or watch, or an operator's kubectl. */
function aksEvent(r: Rand, at: number, i: number): Obj {
  const watch = i % 5 === 1;
  const sa = r.pick([
    "resourcequota-controller",
    "generic-garbage-collector",
    "namespace-controller",
  ]);
  const human = i % 7 === 3;
  const user = human
    ? { username: "aksService", groups: ["system:masters", "system:authenticated"] }
    : {
      username: `system:serviceaccount:kube-system:${sa}`,
      uid: r.uuid(),
      groups: [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
      ],
    };
  const e: Obj = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: human ? "Request" : "Metadata",
    auditID: r.uuid(),
    stage: watch && r.f() < 0.5 ? "ResponseStarted" : "ResponseComplete",
    requestURI: watch
      ? `/api/v1/configmaps?resourceVersion=${
        r.range(1e5, 9e5)
      }&timeout=7m2s&timeoutSeconds=422&watch=true`
      : human
      ? "/api/v1/namespaces/kube-system/configmaps/cluster-autoscaler-status"
      : `/apis/${
        r.pick(["metrics.k8s.io/v1beta1", "autoscaling/v2beta1", "batch/v1"])
      }?timeout=32s`,
    verb: watch ? "watch" : "get",
    user,
    sourceIPs: [`172.31.${r.int(30)}.${r.range(2, 250)}`],
    userAgent: human
      ? "kubectl/v1.13.12 (linux/amd64) kubernetes/a8b5222"
      : `hyperkube/v1.15.10 (linux/amd64) kubernetes/059c666/system:serviceaccount:kube-system:${sa}`,
  };
  if (watch || human) {
    e.objectRef = {
      resource: "configmaps",
      ...(human ? { namespace: "kube-system", name: "cluster-autoscaler-status" } : {}),
      apiVersion: "v1",
    };
  }
  e.responseStatus = { metadata: {}, code: 200 };
  e.requestReceivedTimestamp = micro(at, r.int(1000));
  e.stageTimestamp = micro(at + r.range(0, 8), r.int(1000));
  e.annotations = {
    "authorization.k8s.io/decision": "allow",
    "authorization.k8s.io/reason":
      'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"',
  };
  return e;
}

/** An Azure Monitor diagnostic record carrying `event` as a JSON string with a line end. */
function aksRecord(r: Rand, event: Obj, at: number): Obj {
  return {
    operationName: "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
    category: "kube-audit",
    ccpNamespace: r.hex(24),
    resourceId:
      "/SUBSCRIPTIONS/00000000-0000-4000-8000-000000000000/RESOURCEGROUPS/AUDIT-TEST/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AUDIT-TEST",
    properties: {
      log: JSON.stringify(event) + "\n",
      stream: "stdout",
      pod: `kube-apiserver-${r.suffix()}`,
    },
    time: new Date(at).toISOString().slice(0, 19) + ".0000000Z",
    Cloud: "AzureCloud",
    Environment: "prod",
    UnderlayClass: "hcp-underlay",
    UnderlayName: "hcp-underlay-centralus-cx-72",
  };
}

/**
 * Azure AKS audit logs: a `{"records":[...]}` envelope on one line without a final line end;
 * a single record pretty-printed after a UTF-8 BOM; a native `RequestResponse` event
 * pretty-printed after a BOM and ending in `} ` (a space, no line end).
 *
 * @example
 * ```ts
 * const [records, single, native] = aksSamples();
 * ```
 */
export function aksSamples(): SampleFile[] {
  const r = new Rand(2020);
  const at = Date.UTC(2020, 4, 5, 16, 16, 37);
  const records = Array.from(
    { length: 22 },
    (_, i) => aksRecord(r, aksEvent(r, at + i * 700, i), at + i * 700),
  );
  const envelope = `{"records": [${records.map((x) => JSON.stringify(x)).join(", ")}]}`;
  const single = BOM +
    JSON.stringify(aksRecord(r, aksEvent(r, at + 99_000, 0), at + 99_000), null, 2);
  const revision: Obj = {
    kind: "ControllerRevision",
    apiVersion: "apps/v1",
    metadata: {
      name: `omsagent-${r.hex(10)}`,
      namespace: "kube-system",
      uid: r.uuid(),
      resourceVersion: String(r.range(1e5, 9e5)),
      creationTimestamp: second(at - 86_400_000),
      labels: { "controller-revision-hash": r.hex(10), "dsName": "omsagent-ds" },
    },
    data: { spec: { template: { spec: { containers: [container(r, 0), container(r, 1)] } } } },
    revision: 3,
  };
  const native: Obj = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "RequestResponse",
    auditID: r.uuid(),
    stage: "ResponseComplete",
    requestURI: `/apis/apps/v1/namespaces/kube-system/controllerrevisions/${
      (revision.metadata as Obj).name
    }`,
    verb: "update",
    user: {
      username: "system:serviceaccount:kube-system:daemon-set-controller",
      uid: r.uuid(),
      groups: [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
      ],
    },
    sourceIPs: ["172.31.9.19"],
    userAgent:
      "hyperkube/v1.15.10 (linux/amd64) kubernetes/059c666/system:serviceaccount:kube-system:daemon-set-controller",
    objectRef: {
      resource: "controllerrevisions",
      namespace: "kube-system",
      name: (revision.metadata as Obj).name,
      apiGroup: "apps",
      apiVersion: "v1",
    },
    responseStatus: { metadata: {}, code: 200 },
    requestObject: revision,
    responseObject: revision,
    requestReceivedTimestamp: micro(at + 200_000, 12),
    stageTimestamp: micro(at + 200_004, 345),
    annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "" },
  };
  return [
    { name: "aks/records.json", text: envelope },
    { name: "aks/single-record.json", text: single },
    { name: "aks/pretty-event.json", text: BOM + JSON.stringify(native, null, 2) + " " },
  ];
}

/**
 * A policy that logs three resources at three levels (a pod at `Metadata`, a configmap at
 * `Request`, a secret at `RequestResponse` with its base64 data), one event per line; a single
 * `RequestResponse` pod create on one line; a kubelet renewing its node lease, pretty-printed
 * with a final line end.
 *
 * @example
 * ```ts
 * const files = kubectlSamples(); // "kubectl/levels.json", ...
 * ```
 */
export function kubectlSamples(): SampleFile[] {
  const r = new Rand(2020_04_08);
  const at = Date.UTC(2020, 3, 8, 5, 12, 44);
  const human = { username: "admin", groups: ["system:masters", "system:authenticated"] };
  const base = (level: string, resource: string, name: string, i: number): Obj => ({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level,
    auditID: r.uuid(),
    stage: "ResponseComplete",
    requestURI: `/api/v1/namespaces/default/${resource}`,
    verb: "create",
    user: human,
    sourceIPs: ["198.51.100.92"],
    userAgent: "kubectl/v1.17.4 (darwin/amd64) kubernetes/8d8aa39",
    objectRef: { resource, namespace: "default", name, apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: micro(at + i * 9000, r.int(1000)),
    stageTimestamp: micro(at + i * 9000 + 7, r.int(1000)),
    annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "" },
  });
  const podObj = pod("nginx", "default", (r) => [container(r, 0)])(r);
  const p = base("Metadata", "pods", "nginx", 0);
  const cm = { ...base("Request", "configmaps", "settings", 1) };
  const cmObj = configMap("settings", { mode: "fast" })();
  const withBody = (e: Obj, req: Obj, res?: Obj) => {
    const { requestReceivedTimestamp, stageTimestamp, annotations, ...head } = e;
    return {
      ...head,
      requestObject: req,
      ...(res ? { responseObject: res } : {}),
      requestReceivedTimestamp,
      stageTimestamp,
      annotations,
    };
  };
  const secretObj = {
    kind: "Secret",
    apiVersion: "v1",
    metadata: { name: "db-pass", namespace: "default", creationTimestamp: null },
    data: { password: btoa("s3cr3t-" + r.hex(8)) },
    type: "Opaque",
  };
  const secret = withBody(base("RequestResponse", "secrets", "db-pass", 2), secretObj, {
    ...secretObj,
    metadata: { ...secretObj.metadata, uid: r.uuid(), resourceVersion: "1212" },
  });
  const levels = [p, withBody(cm, cmObj), secret].map((e) => JSON.stringify(e)).join("\n") + "\n";
  const one = withBody(base("RequestResponse", "pods", "web", 3), podObj, podObj);
  const lease: Obj = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: r.uuid(),
    stage: "ResponseComplete",
    requestURI:
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/ip-10-0-31-19.us-west-2.compute.internal?timeout=10s",
    verb: "update",
    user: {
      username: "system:node:ip-10-0-31-19.us-west-2.compute.internal",
      groups: ["system:nodes", "system:authenticated"],
    },
    sourceIPs: ["10.0.31.19"],
    userAgent: "kubelet/v1.27.4+2c83a9f (linux/amd64) kubernetes/2c83a9f",
    objectRef: {
      resource: "leases",
      namespace: "kube-node-lease",
      name: "ip-10-0-31-19.us-west-2.compute.internal",
      uid: r.uuid(),
      apiGroup: "coordination.k8s.io",
      apiVersion: "v1",
      resourceVersion: "123456",
    },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: "2023-09-01T12:00:00.123456Z",
    stageTimestamp: "2023-09-01T12:00:00.131234Z",
    annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "" },
  };
  return [
    { name: "kubectl/levels.json", text: levels },
    { name: "kubectl/pod.json", text: JSON.stringify(one) + "\n" },
    { name: "pretty/lease.json", text: JSON.stringify(lease, null, 2) + "\n" },
  ];
}
