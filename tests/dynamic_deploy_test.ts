/**
 * deploy/dynamic/ stays true: its example AuditSinks and the one in the pod's ConfigMap are
 * valid, its pipeline loads, and the CRD's schema allows the levels and stages auditpipe does.
 */
import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { ROOT } from "./helpers/daemon.ts";
import { parseSinkFile } from "../pipeline/dynamic/read.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { loadResources } from "../pipeline/config/files.ts";
import { requiredPermissions } from "../pipeline/permissions.ts";
import { formatProblem } from "../pipeline/core/problem.ts";
import { LEVELS, STAGES } from "../pipeline/core/event.ts";

const read = (name: string) => Deno.readTextFile(`${ROOT}deploy/dynamic/${name}`);

Deno.test("deploy/dynamic: the example AuditSinks are valid", async () => {
  const { sinks, problems } = parseSinkFile(await read("example-auditsink.yaml"), "example");
  assert.deepEqual(problems.map(formatProblem), []);
  assert.deepEqual(sinks.map((s) => s.sink.metadata.name), ["team-payments", "security-siem"]);
});

Deno.test("deploy/dynamic: the pod's ConfigMaps hold a loadable pipeline and valid AuditSinks", async () => {
  const docs = parseAllDocuments(await read("auditpipe-pod.yaml")).map((d) => d.toJS());
  const data = (name: string) => docs.find((d) => d.metadata.name === name).data;
  const config = loadConfigText(data("auditpipe-config")["pipeline.yaml"], "/etc/auditpipe/p.yaml");
  assert.equal(config.config.dynamic?.dir, "/etc/auditpipe/sinks.d");
  for (const [file, text] of Object.entries(data("auditpipe-auditsinks"))) {
    const { sinks, problems } = parseSinkFile(text as string, file);
    assert.deepEqual(problems.map(formatProblem), []);
    assert.equal(sinks.length, 1);
  }
  const pod = docs.find((d) => d.kind === "Pod");
  const mount = pod.spec.containers[0].volumeMounts.find((m: { name: string }) =>
    m.name === "auditsinks"
  );
  assert.equal(mount.subPath, undefined, "a subPath mount never sees ConfigMap updates");
});

Deno.test("deploy/dynamic: pipeline.yaml loads with its dynamic.dir", async () => {
  const { config } = loadConfigText(await read("pipeline.yaml"), "/etc/auditpipe/pipeline.yaml");
  assert.equal(config.dynamic?.dir, "/etc/auditpipe/sinks.d");
});

Deno.test("deploy/dynamic: the CRD's schema has the v1alpha1 levels and stages", async () => {
  const crd = parse(await read("auditsink-crd.yaml"));
  assert.equal(crd.spec.group, "auditregistration.k8s.io");
  assert.equal(crd.spec.scope, "Cluster");
  const v = crd.spec.versions.find((v: { name: string }) => v.name === "v1alpha1");
  const policy = v.schema.openAPIV3Schema.properties.spec.properties.policy.properties;
  assert.deepEqual(policy.level.enum, LEVELS);
  assert.deepEqual(policy.stages.items.enum, STAGES);
});

Deno.test("deploy/dynamic: auditpipe permissions grants reading the AuditSink folder", async () => {
  const loaded = loadConfigText(await read("pipeline.yaml"), "/etc/auditpipe/pipeline.yaml");
  const { resources } = await loadResources(loaded);
  assert.ok(requiredPermissions(loaded, resources).read.includes("/etc/auditpipe/sinks.d"));
});
