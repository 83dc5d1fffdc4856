/**
 * Events of a busy production cluster, one at a time, as kube-apiserver's log backend writes
 * them (one top-level JSON document, Go field order, Go's HTML escaping): node heartbeats and
 * status updates, controllers, leader election, kube-proxy watches, workload service accounts,
 * probes and a few humans with kubectl. About 1 KB at `Metadata`; `RequestResponse` events
 * carry objects with `metadata.managedFields` (5 to 15 KB). The benchmarks' data is made of
 * these; tests take them from {@linkcode clusterEvent} too.
 *
 * @module
 */
import { goEscape } from "../../pipeline/core/encode.ts";
import type { Rand } from "./rand.ts";

// ---- the cluster the events come from ----

const K8S = "v1.30.4";
const COMMIT = "a51b3b711150f57ffc1f526a640ec058514ed596";
const NODES = Array.from(
  { length: 40 },
  (_, i) => `gke-prod-pool-${i % 3}-${(i * 7919).toString(16)}`,
);
const NAMESPACES = [
  "default",
  "kube-system",
  "monitoring",
  "ingress-nginx",
  "cert-manager",
  "payments",
  "checkout",
  "search",
  "frontend",
  "data-pipeline",
];
const APPS = ["api", "worker", "web", "cache", "indexer", "gateway", "scheduler", "exporter"];
const HUMANS = ["alice@example.com", "bob@example.com", "carol@example.com", "oncall@example.com"];
const CONTROLLERS = [
  "replicaset-controller",
  "deployment-controller",
  "endpointslice-controller",
  "endpoint-controller",
  "job-controller",
  "daemon-set-controller",
  "statefulset-controller",
  "generic-garbage-collector",
  "namespace-controller",
  "horizontal-pod-autoscaler",
  "pvc-protection-controller",
  "node-controller",
];
const WORKLOAD_SAS: [string, string][] = [
  ["monitoring", "prometheus"],
  ["monitoring", "kube-state-metrics"],
  ["ingress-nginx", "ingress-nginx"],
  ["cert-manager", "cert-manager"],
  ["kube-system", "coredns"],
  ["kube-system", "metrics-server"],
  ["data-pipeline", "spark-operator"],
];

interface User {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}
interface Who {
  user: User;
  ip: string;
  agent: string;
  /** The authorizer's reason, as RBAC or the Node authorizer write it. */
  reason: string;
}

function nodeUser(r: Rand): Who {
  const n = r.int(NODES.length);
  return {
    user: { username: `system:node:${NODES[n]}`, groups: ["system:nodes", "system:authenticated"] },
    ip: `10.128.0.${10 + n}`,
    agent: `kubelet/${K8S} (linux/amd64) kubernetes/${COMMIT.slice(0, 7)}`,
    reason: "",
  };
}

function saUser(r: Rand, ns: string, name: string, agent: string, binding: string): Who {
  const node = r.pick(NODES);
  return {
    user: {
      username: `system:serviceaccount:${ns}:${name}`,
      uid: r.uuid(),
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
      extra: {
        "authentication.kubernetes.io/credential-id": [`JTI=${r.uuid()}`],
        "authentication.kubernetes.io/node-name": [node],
        "authentication.kubernetes.io/node-uid": [r.uuid()],
        "authentication.kubernetes.io/pod-name": [`${name}-${r.suffix()}`],
        "authentication.kubernetes.io/pod-uid": [r.uuid()],
      },
    },
    ip: `10.64.${r.int(40)}.${r.range(2, 250)}`,
    agent,
    reason:
      `RBAC: allowed by ClusterRoleBinding "${binding}" of ClusterRole "${binding}" to ServiceAccount "${name}/${ns}"`,
  };
}

function controllerUser(r: Rand): Who {
  const c = r.pick(CONTROLLERS);
  const w = saUser(
    r,
    "kube-system",
    c,
    `kube-controller-manager/${K8S} (linux/amd64) kubernetes/${
      COMMIT.slice(0, 7)
    }/system:serviceaccount:kube-system:${c}`,
    `system:controller:${c}`,
  );
  // Controller tokens are legacy-style inside kube-controller-manager: no pod-bound extras.
  delete w.user.extra;
  w.ip = "10.128.0.2";
  return w;
}

function systemUser(name: string, agent: string, ip = "10.128.0.2"): Who {
  return {
    user: { username: name, groups: ["system:authenticated"] },
    ip,
    agent: `${agent}/${K8S} (linux/amd64) kubernetes/${COMMIT.slice(0, 7)}`,
    reason:
      `RBAC: allowed by ClusterRoleBinding "${name}" of ClusterRole "${name}" to User "${name}"`,
  };
}

function humanUser(r: Rand): Who {
  const name = r.pick(HUMANS);
  return {
    user: { username: name, groups: ["devs", "system:authenticated"] },
    ip: `203.0.113.${r.range(2, 250)}`,
    agent: `kubectl/v1.30.2 (darwin/arm64) kubernetes/${COMMIT.slice(0, 7)}`,
    reason: `RBAC: allowed by RoleBinding "devs-edit/${
      r.pick(NAMESPACES)
    }" of ClusterRole "edit" to Group "devs"`,
  };
}

function workloadUser(r: Rand): Who {
  const [ns, name] = r.pick(WORKLOAD_SAS);
  return saUser(r, ns, name, `${name}/v2.51.0 (linux/amd64)`, `${name}`);
}

/** What a request touched. */
interface Target {
  verb: string;
  group: string;
  version: string;
  resource: string;
  sub?: string;
  ns?: string;
  name?: string;
  /** Query string, already encoded. */
  query?: string;
  /** The object kind, for RequestResponse bodies. */
  kind?: string;
}

interface Scenario {
  who: (r: Rand) => Who;
  target: (r: Rand) => Target;
}

const podName = (r: Rand) => `${r.pick(APPS)}-${r.suffix()}`;
const ns = (r: Rand) => r.pick(NAMESPACES);
const watchQuery = (r: Rand) =>
  `allowWatchBookmarks=true&resourceVersion=${r.range(1e6, 9e7)}&timeout=${r.range(5, 9)}m${
    r.range(0, 59)
  }s&timeoutSeconds=${r.range(300, 600)}&watch=true`;

/** Every kind of request, with its weight in a busy cluster. */
const METADATA_SCENARIOS: readonly (readonly [number, Scenario])[] = [
  // Node heartbeats: one lease update per node every 10 s.
  [14, {
    who: nodeUser,
    target: (r) => ({
      verb: r.f() < 0.85 ? "update" : "get",
      group: "coordination.k8s.io",
      version: "v1",
      resource: "leases",
      ns: "kube-node-lease",
      name: r.pick(NODES),
      query: "timeout=10s",
      kind: "Lease",
    }),
  }],
  [6, {
    who: nodeUser,
    target: (r) => ({
      verb: r.f() < 0.7 ? "patch" : "get",
      group: "",
      version: "v1",
      resource: "nodes",
      sub: r.f() < 0.7 ? "status" : undefined,
      name: r.pick(NODES),
      query: "timeout=10s",
      kind: "Node",
    }),
  }],
  [6, {
    who: nodeUser,
    target: (r) => ({
      verb: r.pick(["patch", "get", "get"]),
      group: "",
      version: "v1",
      resource: "pods",
      sub: r.f() < 0.6 ? "status" : undefined,
      ns: ns(r),
      name: podName(r),
      kind: "Pod",
    }),
  }],
  [4, {
    who: nodeUser,
    target: (r) => ({
      verb: "get",
      group: "",
      version: "v1",
      resource: r.pick(["secrets", "configmaps", "configmaps"]),
      ns: ns(r),
      name: r.pick(["kube-root-ca.crt", "app-config", "tls-cert", "db-credentials"]),
    }),
  }],
  [4, {
    who: nodeUser,
    target: (r) => ({
      verb: "watch",
      group: "",
      version: "v1",
      resource: r.pick(["pods", "configmaps", "secrets", "services", "nodes"]),
      query: watchQuery(r),
    }),
  }],
  [2, {
    who: nodeUser,
    target: (r) => ({
      verb: "create",
      group: "",
      version: "v1",
      resource: "serviceaccounts",
      sub: "token",
      ns: ns(r),
      name: r.pick(["default", "api", "worker"]),
    }),
  }],
  // Leader election of the control plane.
  [7, {
    who: (r) =>
      r.f() < 0.5
        ? systemUser("system:kube-controller-manager", "kube-controller-manager")
        : systemUser("system:kube-scheduler", "kube-scheduler"),
    target: (r) => ({
      verb: r.f() < 0.8 ? "update" : "get",
      group: "coordination.k8s.io",
      version: "v1",
      resource: "leases",
      ns: "kube-system",
      name: r.pick(["kube-controller-manager", "kube-scheduler"]),
      query: "timeout=5s",
    }),
  }],
  // Controllers reconciling workloads.
  [15, {
    who: controllerUser,
    target: (r) => {
      const [group, resource, sub, kind] = r.pick(
        [
          ["", "pods", undefined, "Pod"],
          ["apps", "replicasets", "status", "ReplicaSet"],
          ["apps", "deployments", "status", "Deployment"],
          ["discovery.k8s.io", "endpointslices", undefined, "EndpointSlice"],
          ["", "endpoints", undefined, "Endpoints"],
          ["batch", "jobs", "status", "Job"],
          ["apps", "daemonsets", "status", "DaemonSet"],
          ["", "events", undefined, "Event"],
        ] as const,
      );
      return {
        verb: r.pick(["get", "update", "update", "patch", "create", "delete", "list"]),
        group,
        version: "v1",
        resource,
        sub,
        ns: ns(r),
        name: resource === "pods" ? podName(r) : `${r.pick(APPS)}-${r.suffix().slice(0, 10)}`,
        kind,
      };
    },
  }],
  [4, {
    who: () => systemUser("system:kube-proxy", "kube-proxy"),
    target: (r) => ({
      verb: r.f() < 0.8 ? "watch" : "list",
      group: r.f() < 0.5 ? "discovery.k8s.io" : "",
      version: "v1",
      resource: r.f() < 0.5 ? "endpointslices" : "services",
      query: watchQuery(r),
    }),
  }],
  [3, {
    who: () => systemUser("system:kube-scheduler", "kube-scheduler"),
    target: (r) => ({
      verb: "create",
      group: "",
      version: "v1",
      resource: "pods",
      sub: "binding",
      ns: ns(r),
      name: podName(r),
    }),
  }],
  [3, {
    who: () => ({
      user: {
        username: "system:apiserver",
        uid: "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc",
        groups: ["system:masters"],
      },
      ip: "::1",
      agent: `kube-apiserver/${K8S} (linux/amd64) kubernetes/${COMMIT.slice(0, 7)}`,
      reason: "",
    }),
    target: (r) => ({
      verb: r.pick(["get", "list", "watch"]),
      group: "",
      version: "v1",
      resource: r.pick(["namespaces", "secrets", "resourcequotas", "endpoints"]),
      ns: r.f() < 0.5 ? "kube-system" : undefined,
      name: r.f() < 0.5 ? "kube-system" : undefined,
    }),
  }],
  // Operators and monitoring.
  [9, {
    who: workloadUser,
    target: (r) => {
      const [group, resource, kind] = r.pick(
        [
          ["", "pods", "Pod"],
          ["", "endpoints", "Endpoints"],
          ["", "configmaps", "ConfigMap"],
          ["", "secrets", "Secret"],
          ["monitoring.coreos.com", "servicemonitors", "ServiceMonitor"],
          ["cert-manager.io", "certificates", "Certificate"],
          ["networking.k8s.io", "ingresses", "Ingress"],
          ["coordination.k8s.io", "leases", "Lease"],
        ] as const,
      );
      const verb = r.pick(["get", "list", "watch", "update", "get"]);
      return {
        verb,
        group,
        version: "v1",
        resource,
        ns: ns(r),
        name: verb === "list" || verb === "watch" ? undefined : `${r.pick(APPS)}-${r.int(20)}`,
        query: verb === "watch" ? watchQuery(r) : verb === "list" ? "limit=500" : undefined,
        kind,
      };
    },
  }],
  [5, {
    who: (r) => r.f() < 0.7 ? nodeUser(r) : controllerUser(r),
    target: (r) => ({
      verb: r.pick(["create", "patch"]),
      group: r.f() < 0.5 ? "events.k8s.io" : "",
      version: "v1",
      resource: "events",
      ns: ns(r),
      name: `${podName(r)}.${r.hex(16)}`,
    }),
  }],
  [3, {
    who: (r) => workloadUser(r),
    target: (r) => {
      const [group, resource] = r.pick(
        [
          ["authentication.k8s.io", "tokenreviews"],
          ["authorization.k8s.io", "subjectaccessreviews"],
        ] as const,
      );
      return { verb: "create", group, version: "v1", resource };
    },
  }],
  // People.
  [4, {
    who: humanUser,
    target: (r) => {
      const [group, resource, kind] = r.pick(
        [
          ["apps", "deployments", "Deployment"],
          ["", "pods", "Pod"],
          ["", "configmaps", "ConfigMap"],
          ["", "services", "Service"],
          ["batch", "cronjobs", "CronJob"],
        ] as const,
      );
      const verb = r.pick(["get", "get", "list", "list", "patch", "create", "delete"]);
      const sub = resource === "pods" && r.f() < 0.3
        ? r.pick(["exec", "log", "portforward"])
        : undefined;
      return {
        verb: sub === "exec" || sub === "portforward" ? "create" : sub ? "get" : verb,
        group,
        version: "v1",
        resource,
        sub,
        ns: ns(r),
        name: verb === "list" && !sub ? undefined : `${r.pick(APPS)}-${r.suffix()}`,
        query: sub === "exec"
          ? "command=sh&container=app&stdin=true&stdout=true&tty=true"
          : verb === "list"
          ? "limit=500"
          : undefined,
        kind,
      };
    },
  }],
  [0.3, {
    who: () => ({
      user: {
        username: "system:serviceaccount:kube-system:namespace-controller",
        groups: [
          "system:serviceaccounts",
          "system:serviceaccounts:kube-system",
          "system:authenticated",
        ],
      },
      ip: "10.128.0.2",
      agent: `kube-controller-manager/${K8S} (linux/amd64) kubernetes/${COMMIT.slice(0, 7)}`,
      reason:
        'RBAC: allowed by ClusterRoleBinding "system:controller:namespace-controller" of ClusterRole "system:controller:namespace-controller" to ServiceAccount "namespace-controller/kube-system"',
    }),
    target: (r) => ({
      verb: "deletecollection",
      group: "",
      version: "v1",
      resource: r.pick(["pods", "configmaps", "secrets", "services"]),
      ns: `review-${r.int(100)}`,
    }),
  }],
];

const NON_RESOURCE: readonly (readonly [number, string])[] = [
  [5, "/healthz"],
  [5, "/readyz"],
  [4, "/livez"],
  [2, "/version"],
  [2, "/api?timeout=32s"],
  [2, "/apis?timeout=32s"],
  [1, "/openapi/v2?timeout=32s"],
  [1, "/metrics"],
];

/** Requests whose objects are big: these are the ones logged at RequestResponse. */
const RR_SCENARIOS: readonly (readonly [number, Scenario])[] = [
  [6, {
    who: nodeUser,
    target: (r) => {
      const pod = r.f() < 0.5;
      return {
        verb: "patch",
        group: "",
        version: "v1",
        resource: pod ? "pods" : "nodes",
        sub: "status",
        ns: pod ? ns(r) : undefined,
        name: pod ? podName(r) : r.pick(NODES),
        kind: pod ? "Pod" : "Node",
      };
    },
  }],
  [10, {
    who: controllerUser,
    target: (r) => {
      const [group, resource, kind] = r.pick(
        [
          ["", "pods", "Pod"],
          ["apps", "replicasets", "ReplicaSet"],
          ["apps", "deployments", "Deployment"],
          ["apps", "statefulsets", "StatefulSet"],
          ["apps", "daemonsets", "DaemonSet"],
          ["batch", "jobs", "Job"],
        ] as const,
      );
      return {
        verb: r.pick(["update", "update", "patch", "create", "get"]),
        group,
        version: "v1",
        resource,
        sub: r.f() < 0.4 ? "status" : undefined,
        ns: ns(r),
        name: `${r.pick(APPS)}-${r.suffix()}`,
        kind,
      };
    },
  }],
  [3, {
    who: workloadUser,
    target: (r) => ({
      verb: r.pick(["update", "get", "list"]),
      group: "",
      version: "v1",
      resource: "configmaps",
      ns: ns(r),
      name: `${r.pick(APPS)}-config`,
      kind: "ConfigMap",
    }),
  }],
  [2, {
    who: humanUser,
    target: (r) => ({
      verb: r.pick(["patch", "create", "get"]),
      group: "apps",
      version: "v1",
      resource: "deployments",
      ns: ns(r),
      name: r.pick(APPS),
      kind: "Deployment",
    }),
  }],
];

function requestURI(t: Target): string {
  let p = t.group === "" ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`;
  if (t.ns) p += `/namespaces/${t.ns}`;
  p += `/${t.resource}`;
  if (t.name) p += `/${t.name}`;
  if (t.sub) p += `/${t.sub}`;
  return t.query ? `${p}?${t.query}` : p;
}

// ---- objects with managed fields, for RequestResponse bodies ----

function stamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "Z";
}

function container(r: Rand, i: number): Record<string, unknown> {
  const env = Array.from({ length: r.range(3, 9) }, (_, k) => ({
    name: `${["LOG", "DB", "CACHE", "FEATURE", "OTEL", "REGION"][k % 6]}_${k}_SETTING`,
    value: r.f() < 0.5 ? r.hex(r.range(6, 24)) : `${r.pick(APPS)}.${r.pick(NAMESPACES)}.svc`,
  }));
  return {
    name: i === 0 ? "app" : `sidecar-${i}`,
    image: `us-docker.pkg.dev/prod/${r.pick(APPS)}:${r.range(1, 9)}.${r.range(0, 40)}.${
      r.range(0, 9)
    }`,
    ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
    env,
    resources: {
      limits: { cpu: `${r.range(1, 4)}`, memory: `${r.range(1, 8)}Gi` },
      requests: { cpu: `${r.range(100, 900)}m`, memory: `${r.range(128, 900)}Mi` },
    },
    volumeMounts: [{
      name: "kube-api-access",
      readOnly: true,
      mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
    }],
    livenessProbe: { httpGet: { path: "/healthz", port: 8080, scheme: "HTTP" }, periodSeconds: 10 },
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    imagePullPolicy: "IfNotPresent",
  };
}

function containerFields(c: Record<string, unknown>): Record<string, unknown> {
  const env: Record<string, unknown> = { ".": {} };
  for (const e of c.env as { name: string }[]) {
    env[`k:{"name":"${e.name}"}`] = { ".": {}, "f:name": {}, "f:value": {} };
  }
  return {
    ".": {},
    "f:env": env,
    "f:image": {},
    "f:imagePullPolicy": {},
    "f:livenessProbe": { ".": {}, "f:httpGet": { ".": {}, "f:path": {}, "f:port": {} } },
    "f:name": {},
    "f:ports": {
      ".": {},
      'k:{"containerPort":8080,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} },
    },
    "f:resources": {
      ".": {},
      "f:limits": { "f:cpu": {}, "f:memory": {} },
      "f:requests": { "f:cpu": {}, "f:memory": {} },
    },
  };
}

/** A Kubernetes object of about `target` bytes of JSON, with managedFields. */
function k8sObject(r: Rand, t: Target, now: number, target: number): Record<string, unknown> {
  const kind = t.kind || (t.resource === "nodes" ? "Node" : "Pod");
  const name = t.name || (kind === "Node" ? r.pick(NODES) : podName(r));
  const app = r.pick(APPS);
  const metadata: Record<string, unknown> = {
    name,
    ...(t.ns ? { namespace: t.ns } : {}),
    uid: r.uuid(),
    resourceVersion: String(r.range(1e6, 9e7)),
    generation: r.range(1, 40),
    creationTimestamp: stamp(now - r.range(1, 90) * 86400_000),
    labels: {
      app,
      "app.kubernetes.io/part-of": "shop",
      "pod-template-hash": r.hex(10),
      team: r.pick(["core", "growth", "infra"]),
    },
    annotations: {
      "kubernetes.io/change-cause": `deploy ${r.hex(12)}`,
      "prometheus.io/scrape": "true",
    },
  };
  const containers: Record<string, unknown>[] = [];
  const fields: Record<string, unknown> = {};
  const spec: Record<string, unknown> = {
    containers,
    restartPolicy: "Always",
    serviceAccountName: app,
  };
  const status: Record<string, unknown> = {
    phase: "Running",
    conditions: ["Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({
      type,
      status: "True",
      lastProbeTime: null,
      lastTransitionTime: stamp(now - r.range(60, 86400) * 1000),
    })),
    hostIP: `10.128.0.${r.range(10, 50)}`,
    podIP: `10.64.${r.int(40)}.${r.range(2, 250)}`,
  };
  metadata.managedFields = [
    {
      manager: kind === "Pod" ? "kube-controller-manager" : "kubectl-client-side-apply",
      operation: "Update",
      apiVersion: t.group ? `${t.group}/${t.version}` : t.version,
      time: stamp(now - r.range(60, 86400) * 1000),
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:metadata": {
          "f:labels": { ".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:team": {} },
        },
        "f:spec": { "f:containers": fields, "f:restartPolicy": {}, "f:serviceAccountName": {} },
      },
    },
    {
      manager: "kubelet",
      operation: "Update",
      apiVersion: "v1",
      time: stamp(now - r.range(1, 600) * 1000),
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:status": { "f:conditions": { ".": {} }, "f:hostIP": {}, "f:phase": {}, "f:podIP": {} },
      },
      subresource: "status",
    },
  ];
  const obj = {
    kind,
    apiVersion: t.group ? `${t.group}/${t.version}` : t.version,
    metadata,
    spec,
    status,
  };
  // Grow by containers until the object reaches its size; each adds its managed fields too.
  let size = JSON.stringify(obj).length;
  for (let i = 0; size < target && i < 64; i++) {
    const c = container(r, i);
    const f = containerFields(c);
    containers.push(c);
    fields[`k:{"name":"${c.name}"}`] = f;
    size += JSON.stringify(c).length + JSON.stringify(f).length + 16;
  }
  return obj;
}

// ---- events ----

/** An RFC 3339 time with microseconds, as Go's `metav1.MicroTime` prints it. */
export function micros(ms: number, us: number): string {
  return new Date(ms).toISOString().slice(0, 23) + String(us).padStart(3, "0") + "Z";
}

/**
 * One event of the busy cluster at time `now` (ms since the epoch), as a log line without
 * its line end; `requestResponse` picks a big `RequestResponse` event instead of `Metadata`.
 *
 * @example
 * ```ts
 * const r = new Rand(1);
 * const { line, level } = clusterEvent(r, Date.UTC(2024, 4, 14), false); // level "Metadata"
 * ```
 */
export function clusterEvent(
  r: Rand,
  now: number,
  requestResponse: boolean,
): { line: string; level: string } {
  const rr = requestResponse;
  let who: Who;
  let t: Target | null;
  if (rr) {
    const s = r.weighted(RR_SCENARIOS);
    who = s.who(r);
    t = s.target(r);
  } else if (r.f() < 0.09) {
    who = r.f() < 0.6 ? nodeUser(r) : systemUser("system:anonymous", "kube-probe");
    if (who.user.username === "system:anonymous") who.user.groups = ["system:unauthenticated"];
    t = null;
  } else {
    const s = r.weighted(METADATA_SCENARIOS);
    who = s.who(r);
    t = s.target(r);
  }
  const uri = t ? requestURI(t) : r.weighted(NON_RESOURCE);
  const verb = t ? t.verb : "get";
  const isWatch = verb === "watch";
  const stage = rr
    ? "ResponseComplete"
    : isWatch
    ? (r.f() < 0.7 ? "ResponseStarted" : "ResponseComplete")
    : r.f() < 0.1
    ? "RequestReceived"
    : "ResponseComplete";
  const latencyUs = isWatch ? r.range(300_000_000, 560_000_000) : r.range(300, 40_000);
  const startMs = now -
    (stage === "ResponseComplete" && isWatch ? Math.floor(latencyUs / 1000) : 0);
  const us = r.int(1000);
  const e: Record<string, unknown> = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: rr ? "RequestResponse" : "Metadata",
    auditID: r.uuid(),
    stage,
    requestURI: uri,
    verb,
    user: who.user,
    sourceIPs: [who.ip],
    userAgent: who.agent,
  };
  if (t) {
    const ref: Record<string, unknown> = { resource: t.resource };
    if (t.ns) ref.namespace = t.ns;
    if (t.name) ref.name = t.name;
    if (t.group) ref.apiGroup = t.group;
    ref.apiVersion = t.version;
    if (t.sub) ref.subresource = t.sub;
    e.objectRef = ref;
  }
  let code = 200;
  if (stage !== "RequestReceived") {
    if (verb === "create") code = t?.sub === "exec" || t?.sub === "portforward" ? 101 : 201;
    if (verb === "get" && r.f() < 0.04) code = 404;
    if (verb === "update" && r.f() < 0.03) code = 409;
    if (!t && r.f() < 0.01) code = 500;
    const status: Record<string, unknown> = { metadata: {} };
    if (code >= 400) {
      status.status = "Failure";
      status.message = code === 404
        ? `${t?.resource} "${t?.name}" not found`
        : code === 409
        ? `Operation cannot be fulfilled on ${t?.resource} "${t?.name}": the object has been modified; please apply your changes to the latest version and try again`
        : "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed";
      if (code !== 500) status.reason = code === 404 ? "NotFound" : "Conflict";
      if (code !== 500) status.details = { name: t?.name, kind: t?.resource };
    }
    status.code = code;
    e.responseStatus = status;
  }
  if (rr && t) {
    // Objects overshoot their target by up to one container (about 1.2 KB with its managed
    // fields), so targets leave that room for the event to stay within 5 to 15 KB.
    const target = r.range(5000, 15000) - 1000;
    if (verb !== "get" && verb !== "list") {
      const share = verb === "patch" ? 0.25 : 0.45;
      e.requestObject = k8sObject(r, t, now, target * share - 900);
      e.responseObject = k8sObject(r, t, now, target * (1 - share) - 900);
    } else {
      e.responseObject = k8sObject(r, t, now, target - 900);
    }
  }
  e.requestReceivedTimestamp = micros(startMs, us);
  e.stageTimestamp = stage === "RequestReceived"
    ? micros(startMs, us)
    : micros(startMs + Math.floor(latencyUs / 1000), (us + latencyUs) % 1000);
  if (stage !== "RequestReceived") {
    const ann: Record<string, string> = {
      "authorization.k8s.io/decision": code === 403 ? "forbid" : "allow",
      "authorization.k8s.io/reason": who.reason,
    };
    if (t?.resource === "pods" && (verb === "create" || verb === "update") && !t.sub) {
      ann["pod-security.kubernetes.io/enforce-policy"] = "restricted:latest";
    }
    if (latencyUs > 500_000 && !isWatch) {
      ann["apiserver.latency.k8s.io/etcd"] = `${(latencyUs / 2000).toFixed(3)}ms`;
      ann["apiserver.latency.k8s.io/total"] = `${(latencyUs / 1000).toFixed(3)}ms`;
    }
    e.annotations = ann;
  }
  return {
    line: goEscape(JSON.stringify(e)),
    level: e.level as string,
  };
}
