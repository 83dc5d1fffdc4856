import assert from "node:assert/strict";
import { loadConfigText } from "../pipeline/config/load.ts";
import { loadResources } from "../pipeline/config/files.ts";
import { ConfigError } from "../pipeline/config/errors.ts";

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: Request
`;

async function withDir<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>) {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-resources-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function resolve(dir: string, config: string) {
  const loaded = loadConfigText(config, `${dir}/pipeline.yaml`, () => undefined);
  return await loadResources(loaded);
}

Deno.test("resources: each source and sink is one record holding its config and the files it needs", async () => {
  await withDir({ "policy.yaml": POLICY, "token": "s3cret\n" }, async (dir) => {
    const { resources, problems } = await resolve(
      dir,
      `policy: policy.yaml
sources:
  - type: stdin
  - type: webhook
    auth: {bearerTokenFile: token}
sinks:
  - type: stdout
    name: all
  - type: stdout
    name: none
    policy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: None}]}
`,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(resources.sources.map((s) => [s.config.name, s.token]), [
      ["stdin", undefined],
      ["webhook", "s3cret"],
    ]);
    const [all, none] = resources.sinks;
    assert.equal(all.config.name, "all");
    assert.equal(all.policy?.from, `${dir}/policy.yaml`);
    assert.equal(all.policy?.compiled.rules.length, 2);
    assert.equal(none.config.name, "none");
    assert.equal(none.policy?.from, "inline");
    assert.equal(none.policy?.compiled.rules.length, 1);
    // A record's fingerprint follows its own inputs only.
    assert.notEqual(all.fingerprint, none.fingerprint);
  });
});

Deno.test("resources: a policy file's problem names the policy file's line and column, not a fake position", async () => {
  await withDir(
    { "policy.yaml": POLICY.replace("level: Request", "level: Everything") },
    async (dir) => {
      const { problems } = await resolve(
        dir,
        `sources:\n  - type: stdin\nsinks:\n  - type: stdout\n    policy: policy.yaml\n  - type: log\n    path: a.log\n    policy: policy.yaml\n`,
      );
      // Named once although two sinks use it.
      assert.equal(problems.length, 1, JSON.stringify(problems));
      const [p] = problems;
      assert.equal(p.file, `${dir}/policy.yaml`);
      assert.deepEqual([p.line, p.col, p.path], [6, 12, "rules[1].level"]);
      assert.match(
        new ConfigError(problems).message,
        new RegExp(
          `^${dir}/policy\\.yaml:6:12 rules\\[1\\]\\.level: Unsupported value: "Everything"`,
        ),
      );
    },
  );
});

Deno.test("resources: an inline policy's problem names the config key that holds it", async () => {
  await withDir({}, async (dir) => {
    const { problems } = await resolve(
      dir,
      `sources:
  - type: stdin
sinks:
  - type: stdout
    policy:
      apiVersion: audit.k8s.io/v1
      kind: Policy
      rules:
        - level: Loud
`,
    );
    assert.deepEqual(
      problems.map((p) => [p.file, p.line, p.col, p.path]),
      [[`${dir}/pipeline.yaml`, 9, 11, "sinks[0].policy.rules[0].level"]],
    );
  });
});

Deno.test("resources: a missing kubeconfig and token file are named at the keys that name them", async () => {
  await withDir({}, async (dir) => {
    const { problems } = await resolve(
      dir,
      `sources:\n  - type: webhook\n    auth: {bearerTokenFile: nope}\nsinks:\n  - type: webhook\n    kubeconfig: kc.yaml\n`,
    );
    assert.deepEqual(problems.map((p) => [p.line, p.path]), [
      [6, "sinks[0].kubeconfig"],
      [3, "sources[0].auth.bearerTokenFile"],
    ]);
  });
});
