/**
 * A kube-apiserver `audit.log` as its log backend writes it while a single-node cluster
 * starts: a Metadata-everything policy, so every request appears at each stage it reached
 * (`RequestReceived`, `ResponseStarted` for watches, `ResponseComplete`), one top-level
 * `audit.k8s.io/v1` document per line in Go's field order and HTML escaping (`&` as
 * `\u0026`). It has the quirks of a real one: lines are written when a stage ends, so they
 * are not sorted by `stageTimestamp`; long-running watches still open at the end have no
 * `ResponseComplete`; slow requests carry `apiserver.latency.k8s.io/*` annotations with
 * non-ASCII units (`µs`); `/healthz` and `/readyz` answer 500 until etcd is up; a kubelet
 * registering its node again gets 409 AlreadyExists. Deterministic for a seed.
 *
 * @module
 */
import { goEscape } from "../../pipeline/core/encode.ts";
import { Rand } from "./rand.ts";

const VERSION = "v1.25.6";
const BUILD = "ff2c119";
const NODE = "node-a1";
const START = Date.UTC(2023, 2, 10, 22, 38, 26, 382);
/** Before this much time has passed, health checks fail: etcd is not up yet. */
const UNHEALTHY_MS = 4000;

interface Who {
  user: Record<string, unknown>;
  ip: string;
  agent: string;
}

const admin = (agent = `kubectl/${VERSION} (linux/amd64) kubernetes/${BUILD}`): Who => ({
  user: { username: "admin", uid: "admin", groups: ["system:masters", "system:authenticated"] },
  ip: "127.0.0.1",
  agent,
});
const kubelite = `kubelite/${VERSION} (linux/amd64) kubernetes/${BUILD}`;
const system = (username: string, uid: string): Who => ({
  user: { username, uid, groups: ["system:authenticated"] },
  ip: "127.0.0.1",
  agent: kubelite,
});
const apiserver: Who = {
  user: {
    username: "system:apiserver",
    uid: "3f0c6a52-0d1e-4f7b-9c2a-5b8e1d7a9c40",
    groups: ["system:masters"],
  },
  ip: "::1",
  agent: kubelite,
};
const node: Who = {
  user: {
    username: `system:node:${NODE}`,
    uid: "kubelet-0",
    groups: ["system:nodes", "system:authenticated"],
  },
  ip: "127.0.0.1",
  agent: kubelite,
};
const CONTROLLERS = [
  "replicaset-controller",
  "deployment-controller",
  "endpointslice-controller",
  "daemon-set-controller",
  "statefulset-controller",
  "namespace-controller",
  "disruption-controller",
  "generic-garbage-collector",
  "resourcequota-controller",
];
const controller = (r: Rand): Who => {
  const c = r.pick(CONTROLLERS);
  return {
    user: {
      username: `system:serviceaccount:kube-system:${c}`,
      uid: `0a1b2c3d-${c.length.toString(16).padStart(4, "0")}-4e5f-8a9b-${
        (c.charCodeAt(0) * 7919).toString(16).padStart(12, "0")
      }`,
      groups: [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
      ],
    },
    ip: "127.0.0.1",
    agent: `${kubelite}/system:serviceaccount:kube-system:${c}`,
  };
};

/** What one request touched. */
interface Req {
  who: Who;
  verb: string;
  uri: string;
  ref?: Record<string, string>;
  code?: number;
  failure?: { message: string; reason: string; details: Record<string, string> };
  watch?: boolean;
}

const NAMESPACES = ["kube-system", "default", "monitoring", "ingress", "solr"];
const CRDS: [string, string, string][] = [
  ["monitoring.coreos.com", "v1", "alertmanagers"],
  ["monitoring.coreos.com", "v1", "prometheuses"],
  ["monitoring.coreos.com", "v1alpha1", "alertmanagerconfigs"],
  ["traefik.containo.us", "v1alpha1", "ingressroutes"],
  ["solr.apache.org", "v1beta1", "solrclouds"],
  ["zookeeper.pravega.io", "v1beta1", "zookeeperclusters"],
];
const WORKLOADS: [string, string][] = [
  ["apps", "replicasets"],
  ["apps", "deployments"],
  ["apps", "statefulsets"],
  ["apps", "daemonsets"],
  ["", "pods"],
  ["policy", "poddisruptionbudgets"],
];

function ref(group: string, version: string, resource: string, extra: Record<string, string>) {
  const o: Record<string, string> = { resource };
  if (extra.namespace) o.namespace = extra.namespace;
  if (extra.name) o.name = extra.name;
  if (group) o.apiGroup = group;
  o.apiVersion = version;
  if (extra.subresource) o.subresource = extra.subresource;
  return o;
}

function path(group: string, version: string, resource: string, o: Record<string, string>) {
  let p = group ? `/apis/${group}/${version}` : `/api/${version}`;
  if (o.namespace) p += `/namespaces/${o.namespace}`;
  p += `/${resource}`;
  if (o.name) p += `/${o.name}`;
  if (o.subresource) p += `/${o.subresource}`;
  return p;
}

const watchQuery = (r: Rand) =>
  `?allowWatchBookmarks=true&resourceVersion=${r.range(3e6, 4e6)}&timeout=${r.range(5, 9)}m${
    r.range(10, 59)
  }s&timeoutSeconds=${r.range(300, 590)}&watch=true`;

/** The requests of a starting cluster, by weight. */
const SCENARIOS: readonly (readonly [number, (r: Rand, at: number) => Req])[] = [
  [
    6,
    (r) => ({ who: admin(), verb: "get", uri: r.pick(["/api?timeout=32s", "/apis?timeout=32s"]) }),
  ],
  [3, (r, at) => ({
    who: admin(kubelite),
    verb: "get",
    uri: r.pick(["/healthz", "/readyz", "/readyz"]),
    code: at < UNHEALTHY_MS ? 500 : 200,
  })],
  [5, (r) => {
    const [group, version] = r.pick(
      [["apps", "v1"], ["batch", "v1"], ["discovery.k8s.io", "v1"], ...CRDS] as const,
    );
    return { who: controller(r), verb: "get", uri: `/apis/${group}/${version}?timeout=32s` };
  }],
  [12, (r) => {
    const [group, resource] = r.pick(WORKLOADS);
    const o = {
      namespace: r.pick(NAMESPACES),
      name: `${r.pick(["coredns", "traefik", "solr", "metrics"])}-${r.suffix().slice(0, 10)}`,
      subresource: r.f() < 0.5 ? "status" : "",
    };
    return {
      who: controller(r),
      verb: r.pick(["get", "update", "update", "get", "patch"]),
      uri: path(group, "v1", resource, o),
      ref: ref(group, "v1", resource, o),
    };
  }],
  [4, (r) => {
    const [group, version, resource] = r.pick(CRDS);
    return {
      who: system("system:kube-controller-manager", "controller"),
      verb: "list",
      uri: `${path(group, version, resource, {})}?limit=500&resourceVersion=0`,
      ref: ref(group, version, resource, {}),
    };
  }],
  [3, (r) => {
    const [group, resource] = r.pick(
      [["scheduling.k8s.io", "priorityclasses"], ["", "secrets"], ["", "namespaces"], [
        "",
        "services",
      ]] as const,
    );
    return {
      who: apiserver,
      verb: "watch",
      uri: path(group, "v1", resource, {}) + watchQuery(r),
      ref: ref(group, "v1", resource, {}),
      watch: true,
    };
  }],
  [2, (r) => ({
    who: apiserver,
    verb: "list",
    uri: `/api/v1/${
      r.pick(["secrets", "endpoints", "resourcequotas"])
    }?limit=500&resourceVersion=0`,
    ref: ref("", "v1", "secrets", {}),
  })],
  [6, (r) => {
    const lease = r.f() < 0.6;
    const o: Record<string, string> = lease
      ? { namespace: "kube-node-lease", name: NODE }
      : { name: NODE };
    return {
      who: node,
      verb: lease ? r.pick(["update", "get"]) : "get",
      uri: path(lease ? "coordination.k8s.io" : "", "v1", lease ? "leases" : "nodes", o) +
        "?timeout=10s",
      ref: ref(lease ? "coordination.k8s.io" : "", "v1", lease ? "leases" : "nodes", o),
    };
  }],
  [2, (r) => {
    const o = {
      namespace: r.pick(NAMESPACES),
      name: r.pick(["default", "coredns", "traefik"]),
      subresource: "token",
    };
    return {
      who: node,
      verb: "create",
      uri: path("", "v1", "serviceaccounts", o),
      ref: ref("", "v1", "serviceaccounts", o),
    };
  }],
  [2, (r) => {
    const sched = r.f() < 0.5;
    const name = sched ? "kube-scheduler" : "kube-controller-manager";
    const o = { namespace: "kube-system", name };
    return {
      who: system(`system:${name}`, sched ? "scheduler" : "controller"),
      verb: r.pick(["get", "update"]),
      uri: path("coordination.k8s.io", "v1", "leases", o) + "?timeout=5s",
      ref: ref("coordination.k8s.io", "v1", "leases", o),
    };
  }],
  [2, (r) => ({
    who: system("system:kube-proxy", "kube-proxy"),
    verb: "watch",
    uri: path("discovery.k8s.io", "v1", "endpointslices", {}) + watchQuery(r),
    ref: ref("discovery.k8s.io", "v1", "endpointslices", {}),
    watch: true,
  })],
  [1, (r) => {
    const o = { namespace: "default", name: `web-${r.suffix()}` };
    return {
      who: admin(),
      verb: "get",
      uri: path("", "v1", "pods", o),
      ref: ref("", "v1", "pods", o),
    };
  }],
];

/** A microsecond timestamp: `ms` plus `us` microseconds. */
function micro(ms: number, us: number): string {
  return new Date(ms).toISOString().slice(0, 23) + String(us).padStart(3, "0") + "Z";
}

/** Go's `time.Duration.String()` of `ns` nanoseconds, as the latency annotations print it. */
function goDuration(ns: number): string {
  if (ns < 1000) return `${ns}ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(3).replace(/\.?0+$/, "")}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(6).replace(/\.?0+$/, "")}ms`;
  return `${(ns / 1e9).toFixed(9).replace(/\.?0+$/, "")}s`;
}

interface Written {
  /** When the line was written (ms, fractional): the order of the file. */
  at: number;
  line: string;
}

/**
 * The lines of a generated start-up `audit.log` (no line ends), `events` of them.
 *
 * @example
 * ```ts
 * const lines = apiserverLog({ events: 100 });
 * const first = JSON.parse(lines[0]); // admin's kubectl asking for /api, RequestReceived
 * ```
 */
export function apiserverLog(opts: { events?: number; seed?: number } = {}): string[] {
  const total = opts.events ?? 3000;
  const r = new Rand(opts.seed ?? 20230310);
  const out: Written[] = [];
  let t = 0;
  let conflict = false;
  const emit = (
    req: Req,
    stage: string,
    startMs: number,
    startUs: number,
    endMs: number,
    endUs: number,
    slow: number,
  ) => {
    const e: Record<string, unknown> = {
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      level: "Metadata",
      auditID: "",
      stage,
      requestURI: req.uri,
      verb: req.verb,
      user: req.who.user,
      sourceIPs: [req.who.ip],
      userAgent: req.who.agent,
    };
    if (req.ref) e.objectRef = req.ref;
    if (stage !== "RequestReceived") {
      const status: Record<string, unknown> = { metadata: {} };
      if (req.failure) {
        status.status = "Failure";
        status.message = req.failure.message;
        status.reason = req.failure.reason;
        status.details = req.failure.details;
      }
      status.code = req.code ?? 200;
      e.responseStatus = status;
    }
    e.requestReceivedTimestamp = micro(START + startMs, startUs);
    e.stageTimestamp = micro(START + endMs, endUs);
    if (stage !== "RequestReceived") {
      const ann: Record<string, string> = {};
      if (slow > 0 && stage === "ResponseComplete") {
        ann["apiserver.latency.k8s.io/etcd"] = goDuration(Math.floor(slow * 0.1));
        ann["apiserver.latency.k8s.io/response-write"] = goDuration(r.range(400, 900));
        ann["apiserver.latency.k8s.io/serialize-response-object"] = goDuration(
          r.range(4000, 700_000),
        );
        ann["apiserver.latency.k8s.io/total"] = goDuration(slow);
        ann["apiserver.latency.k8s.io/transform-response-object"] = goDuration(
          r.range(3000, 90_000),
        );
      }
      ann["authorization.k8s.io/decision"] = "allow";
      ann["authorization.k8s.io/reason"] = "";
      e.annotations = ann;
    }
    return e;
  };
  let count = 0;
  let first = true;
  while (count < total) {
    const req: Req = first
      ? { who: admin(), verb: "get", uri: "/api?timeout=32s" }
      : r.weighted(SCENARIOS)(r, t);
    first = false;
    if (!conflict && t > UNHEALTHY_MS && r.f() < 0.05) {
      conflict = true;
      req.who = node;
      req.verb = "create";
      req.uri = "/api/v1/nodes";
      req.ref = { resource: "nodes", name: NODE, apiVersion: "v1" };
      req.code = 409;
      req.failure = {
        message: `nodes "${NODE}" already exists`,
        reason: "AlreadyExists",
        details: { name: NODE, kind: "nodes" },
      };
    }
    if (req.verb === "create" && !req.code) req.code = 201;
    const id = r.uuid();
    const startMs = t;
    const startUs = r.int(1000);
    // Busy start-up: a few ms between requests, with bursts.
    t += r.f() < 0.3 ? r.range(0, 1) : r.range(1, 140);
    const slow = !req.watch && req.verb === "list" && r.f() < 0.3 ? r.range(510e6, 900e6) : 0;
    const latencyUs = req.watch
      ? r.range(300, 900)
      : slow
      ? Math.floor(slow / 1000)
      : r.range(80, 30_000);
    const stages: [string, number][] = [["RequestReceived", 0]];
    if (req.watch) {
      stages.push(["ResponseStarted", latencyUs]);
      // Watches run for minutes: most are still open when the file ends.
      if (r.f() < 0.3) stages.push(["ResponseComplete", r.range(20_000_000, 200_000_000)]);
    } else stages.push(["ResponseComplete", latencyUs]);
    for (const [stage, afterUs] of stages) {
      const endTotalUs = startUs + afterUs;
      const endMs = startMs + Math.floor(endTotalUs / 1000);
      const e = emit(req, stage, startMs, startUs, endMs, endTotalUs % 1000, slow);
      e.auditID = id;
      // Written when the stage ends, plus the time it takes to get to the log: this is what
      // leaves lines out of stageTimestamp order.
      out.push({
        at: endMs + endTotalUs % 1000 / 1000 + r.f() * 3,
        line: goEscape(JSON.stringify(e)),
      });
      count++;
    }
  }
  out.sort((a, b) => a.at - b.at);
  return out.slice(0, total).map((w) => w.line);
}
