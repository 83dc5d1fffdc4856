/**
 * What the in-process `auditpipe policy` tests share: a run with in-memory files, the policy
 * they evaluate against, and a pod-creation event to vary.
 *
 * @module
 */
import { runPolicyCli } from "../../cli/policy/main.ts";
import { type Run, run } from "../fixtures/policy/memory_io.ts";

/**
 * Runs `auditpipe policy <args>` in-process against in-memory `files` and `stdin`.
 *
 * @example
 * ```ts
 * const r = await runPolicy(["eval", "-p", "p.yaml", "-"], { "p.yaml": POLICY }, lines);
 * ```
 */
export const runPolicy = (
  args: string[],
  files: Record<string, string> = {},
  stdin = "",
  tty = false,
): Promise<Run> => run(runPolicyCli, args, files, stdin, tty);

/**
 * A policy that drops kube-proxy, keeps secrets at Metadata and the rest of the core group at
 * RequestResponse, and omits RequestReceived; tests may append rules.
 *
 * @example
 * ```ts
 * const policy = POLICY + "  - level: Request\n    verbs: [deletecollection]\n";
 * ```
 */
export const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-proxy]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: RequestResponse
    resources: [{group: ""}]
`;

/**
 * A pod creation by alice as kube-apiserver logs it (with kind and apiVersion), named `id`;
 * `over` replaces or adds fields.
 *
 * @example
 * ```ts
 * const proxy = podEvent("p", { user: { username: "system:kube-proxy" } });
 * ```
 */
export function podEvent(
  id: string,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "RequestResponse",
    auditID: id,
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods",
    verb: "create",
    user: { username: "alice" },
    objectRef: { resource: "pods", namespace: "default", name: id },
    requestObject: { kind: "Pod", metadata: { name: id } },
    requestReceivedTimestamp: "2024-01-01T00:00:00.000000Z",
    stageTimestamp: "2024-01-01T00:00:00.000000Z",
    ...over,
  };
}

/**
 * Five events `ev` makes, one for each way the shared {@linkcode POLICY} treats them: a pod
 * (RequestResponse), a secret (Metadata), a RequestReceived stage (omitted), kube-proxy
 * (None) and a non-resource URL (no rule matches: None).
 *
 * @example
 * ```ts
 * const lines = policyCases().map((e) => JSON.stringify(e)).join("\n");
 * ```
 */
export function policyCases(
  ev: (id: string, over?: Record<string, unknown>) => Record<string, unknown> = podEvent,
): Record<string, unknown>[] {
  return [
    ev("pod"),
    ev("secret", { objectRef: { resource: "secrets", namespace: "default", name: "s" } }),
    ev("received", { stage: "RequestReceived" }),
    ev("proxy", { user: { username: "system:kube-proxy" } }),
    ev("health", { objectRef: undefined, requestURI: "/healthz", verb: "get" }),
  ];
}
