/**
 * Loading and validating policies: what kube-apiserver accepts and rejects, with every
 * problem reported at its file position and field.
 */
import assert from "node:assert/strict";
import {
  type Level,
  parsePolicy,
  type Policy,
  PolicyError,
  policyFromObject,
  type PolicyRule,
  validatePolicy,
} from "../policy/mod.ts";

function rejects(text: string): PolicyError {
  try {
    parsePolicy(text, "p.yaml");
  } catch (err) {
    assert.ok(err instanceof PolicyError, `not a PolicyError: ${err}`);
    return err;
  }
  assert.fail("policy was accepted");
}

const HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

Deno.test("a YAML policy loads with every field of audit.k8s.io/v1", () => {
  const { policy, warnings } = parsePolicy(
    HEAD + `omitStages: [RequestReceived]
omitManagedFields: true
rules:
  - level: RequestResponse
    users: ["alice"]
    userGroups: ["system:nodes"]
    verbs: ["create", "patch"]
    resources:
      - group: ""
        resources: ["pods", "pods/log", "*/scale", "pods/*", "*"]
        resourceNames: ["web-0"]
      - group: "*"
    namespaces: ["default", ""]
    omitStages: [Panic]
    omitManagedFields: false
  - level: None
    nonResourceURLs: ["/healthz*", "/metrics"]
`,
    "p.yaml",
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual(policy, {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    rules: [{
      level: "RequestResponse",
      users: ["alice"],
      userGroups: ["system:nodes"],
      verbs: ["create", "patch"],
      resources: [
        {
          group: "",
          resources: ["pods", "pods/log", "*/scale", "pods/*", "*"],
          resourceNames: ["web-0"],
        },
        { group: "*" },
      ],
      namespaces: ["default", ""],
      omitStages: ["Panic"],
      omitManagedFields: false,
    }, { level: "None", nonResourceURLs: ["/healthz*", "/metrics"] }],
    omitStages: ["RequestReceived"],
    omitManagedFields: true,
  });
});

Deno.test("a JSON policy loads, with a byte order mark and tabs", () => {
  const { policy } = parsePolicy(
    '\ufeff{\n\t"apiVersion": "audit.k8s.io/v1",\n\t"kind": "Policy",\n\t"rules": [{"level": "Metadata"}]\n}\n',
    "p.json",
  );
  assert.deepEqual(policy.rules, [{ level: "Metadata" }]);
});

Deno.test("upstream reader_test policy loads as upstream expects", () => {
  const { policy } = parsePolicy(
    `
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs:
      - /healthz*
      - /version
  - level: RequestResponse
    users: ["tim"]
    userGroups: ["testers", "developers"]
    verbs: ["patch", "delete", "create"]
    resources:
      - group: ""
      - group: "rbac.authorization.k8s.io"
        resources: ["clusterroles", "clusterrolebindings"]
    namespaces: ["default", "kube-system"]
  - level: Metadata
`,
    "p.yaml",
  );
  assert.deepEqual(policy.rules, [
    { level: "None", nonResourceURLs: ["/healthz*", "/version"] },
    {
      level: "RequestResponse",
      users: ["tim"],
      userGroups: ["testers", "developers"],
      verbs: ["patch", "delete", "create"],
      resources: [{ group: "" }, {
        group: "rbac.authorization.k8s.io",
        resources: ["clusterroles", "clusterrolebindings"],
      }],
      namespaces: ["default", "kube-system"],
    },
    { level: "Metadata" },
  ]);
});

Deno.test("a policy without apiVersion and kind is rejected as of unknown group version", () => {
  const err = rejects("rules:\n  - level: None\n");
  assert.equal(
    err.message,
    "p.yaml:1:1 apiVersion: Required value: unknown group version field in policy: " +
      "expected apiVersion: audit.k8s.io/v1 and kind: Policy\n" +
      "p.yaml:1:1 kind: Required value: expected apiVersion: audit.k8s.io/v1 and kind: Policy",
  );
  assert.equal(err.field, "apiVersion");
  assert.equal(err.line, 1);
  assert.equal(err.col, 1);
});

Deno.test("v1beta1 and v1alpha1 policies are rejected as removed in 1.24", () => {
  for (const v of ["v1beta1", "v1alpha1"]) {
    const err = rejects(`apiVersion: audit.k8s.io/${v}\nkind: Policy\nrules:\n- level: None\n`);
    assert.equal(
      err.message,
      `p.yaml:1:13 apiVersion: Unsupported value: "audit.k8s.io/${v}": this version was removed ` +
        "in Kubernetes 1.24; expected apiVersion: audit.k8s.io/v1 and kind: Policy",
    );
  }
});

Deno.test("another group version or kind is rejected at its position", () => {
  const err = rejects("apiVersion: v1\nkind: ConfigMap\nrules:\n- level: None\n");
  assert.deepEqual(err.message.split("\n"), [
    'p.yaml:1:13 apiVersion: Unsupported value: "v1": unknown group version field in policy: ' +
    "expected apiVersion: audit.k8s.io/v1 and kind: Policy",
    'p.yaml:2:7 kind: Unsupported value: "ConfigMap": expected apiVersion: audit.k8s.io/v1 and kind: Policy',
  ]);
});

Deno.test("a policy with no rules is illegal", () => {
  assert.equal(rejects(HEAD).message, "p.yaml:1:1 rules: loaded illegal policy with 0 rules");
  assert.equal(
    rejects(HEAD + "rules: []\n").message,
    "p.yaml:3:8 rules: loaded illegal policy with 0 rules",
  );
});

Deno.test("an empty or comment-only file fails", () => {
  for (const text of ["", "\n\n", "# nothing\n"]) {
    const err = rejects(text);
    assert.equal(err.line, 1);
    assert.equal(err.col, 1);
    assert.equal(err.field, "");
    assert.match(
      err.message,
      /^p\.yaml:1:1: policy file is empty: loaded illegal policy with 0 rules/,
    );
  }
});

Deno.test("YAML syntax errors carry their position", () => {
  const err = rejects(HEAD + "rules: [\n");
  assert.equal(err.line, 4);
  assert.match(err.message, /^p\.yaml:4:1: not valid YAML or JSON: /);
});

Deno.test("a document that is not a mapping is rejected", () => {
  assert.equal(rejects("- a\n- b\n").message, "p.yaml:1:1: a Policy must be a mapping, got a list");
});

Deno.test("a missing level is required", () => {
  const err = rejects(HEAD + "rules:\n  - verbs: [get]\n");
  assert.equal(
    err.message,
    'p.yaml:4:5 rules[0].level: Required value: must be one of "None", "Metadata", "Request", ' +
      '"RequestResponse"',
  );
});

Deno.test("an unknown level is unsupported", () => {
  const err = rejects(HEAD + "rules:\n  - level: FooBar\n");
  assert.equal(
    err.message,
    'p.yaml:4:12 rules[0].level: Unsupported value: "FooBar": supported values: "None", ' +
      '"Metadata", "Request", "RequestResponse"',
  );
  assert.equal(err.field, "rules[0].level");
});

Deno.test("unknown stages in policy and rule omitStages are invalid", () => {
  const err = rejects(
    HEAD +
      "omitStages: [RequestRecieved]\nrules:\n  - level: None\n    omitStages: [Panic, Done]\n",
  );
  assert.deepEqual(err.message.split("\n"), [
    'p.yaml:3:14 omitStages[0]: Invalid value: "RequestRecieved": allowed stages are ' +
    "RequestReceived,ResponseStarted,ResponseComplete,Panic",
    'p.yaml:6:25 rules[0].omitStages[1]: Invalid value: "Done": allowed stages are ' +
    "RequestReceived,ResponseStarted,ResponseComplete,Panic",
  ]);
});

Deno.test("non-resource URLs must start with / and have * only at the end", () => {
  const err = rejects(
    HEAD +
      'rules:\n  - level: None\n    nonResourceURLs: ["logs", "", "/logs/*/*", "/logs/*.log", "*", "/ok*"]\n',
  );
  assert.deepEqual(err.message.split("\n"), [
    'p.yaml:5:23 rules[0].nonResourceURLs[0]: Invalid value: "logs": non-resource URL rules ' +
    "must begin with a '/' character",
    'p.yaml:5:31 rules[0].nonResourceURLs[1]: Invalid value: "": non-resource URL rules must ' +
    "begin with a '/' character",
    'p.yaml:5:35 rules[0].nonResourceURLs[2]: Invalid value: "/logs/*/*": non-resource URL ' +
    "wildcards '*' must be the final character of the rule",
    'p.yaml:5:48 rules[0].nonResourceURLs[3]: Invalid value: "/logs/*.log": non-resource URL ' +
    "wildcards '*' must be the final character of the rule",
  ]);
});

Deno.test("a rule cannot have non-resource URLs with resources or namespaces", () => {
  const err = rejects(
    HEAD + `rules:
  - level: Metadata
    namespaces: [default]
    nonResourceURLs: ["/logs*"]
  - level: Metadata
    resources: [{resources: [secrets]}]
    nonResourceURLs: ["/logs*"]
`,
  );
  assert.deepEqual(err.message.split("\n"), [
    'p.yaml:6:22 rules[0].nonResourceURLs: Invalid value: ["/logs*"]: rules cannot apply to both ' +
    "regular resources and non-resource URLs",
    'p.yaml:9:22 rules[1].nonResourceURLs: Invalid value: ["/logs*"]: rules cannot apply to both ' +
    "regular resources and non-resource URLs",
  ]);
});

Deno.test("a group must be a lowercase DNS subdomain, core or *", () => {
  const err = rejects(
    HEAD + `rules:
  - level: Metadata
    resources:
      - group: "rbac.authorization.k8s.io/v1beta1"
        resources: ["roles"]
      - group: Apps
      - group: ""
      - group: "*"
      - group: "x.example.com"
`,
  );
  const lines = err.message.split("\n");
  assert.equal(lines.length, 2);
  assert.match(
    lines[0],
    /^p\.yaml:6:16 rules\[0\]\.resources\[0\]\.group: Invalid value: "rbac\.authorization\.k8s\.io\/v1beta1": a lowercase RFC 1123 subdomain must consist of/,
  );
  assert.match(
    lines[1],
    /^p\.yaml:8:16 rules\[0\]\.resources\[1\]\.group: Invalid value: "Apps": /,
  );
});

Deno.test("a group longer than 253 characters is invalid", () => {
  const long = "a".repeat(254);
  const err = rejects(HEAD + `rules:\n  - level: Metadata\n    resources: [{group: ${long}}]\n`);
  assert.match(err.message, /Invalid value: "a+": must be no more than 253 characters$/);
});

Deno.test("resourceNames need resources in the same entry", () => {
  const err = rejects(
    HEAD + `rules:\n  - level: Metadata\n    resources:\n      - resourceNames: [x]\n`,
  );
  assert.equal(
    err.message,
    'p.yaml:6:24 rules[0].resources[0].resourceNames: Invalid value: ["x"]: using resourceNames ' +
      "requires at least one resource",
  );
});

Deno.test("wrongly typed fields are errors at their position", () => {
  const err = rejects(
    HEAD + `omitManagedFields: "yes"
rules:
  - level: 3
    users: alice
    verbs: [get, 7]
    resources: pods
  - nope
`,
  );
  assert.deepEqual(err.message.split("\n"), [
    'p.yaml:3:20 omitManagedFields: must be true or false, got "yes"',
    "p.yaml:5:12 rules[0].level: must be a string, got 3",
    'p.yaml:6:12 rules[0].users: must be a list of strings, got "alice"',
    "p.yaml:7:18 rules[0].verbs[1]: must be a string, got 7",
    "p.yaml:8:16 rules[0].resources: must be a list of {group, resources, resourceNames}",
    'p.yaml:9:5 rules[1]: must be a mapping with at least a level, got "nope"',
  ]);
});

Deno.test("every problem is reported, one per line, in document order", () => {
  const err = rejects(
    `apiVersion: audit.k8s.io/v1beta1
kind: Policy
omitStages: [RequestRecieved]
rules:
  - level: Loud
  - verbs: ["get"]
    resources:
      - group: "rbac.authorization.k8s.io/v1beta1"
        resources: ["roles"]
    nonResourceURLs: ["logs"]
`,
  );
  const fields = err.problems.map((p) => p.path);
  assert.deepEqual(fields, [
    "apiVersion",
    "omitStages[0]",
    "rules[0].level",
    "rules[1].level",
    "rules[1].resources[0].group",
    "rules[1].nonResourceURLs",
    "rules[1].nonResourceURLs[0]",
  ]);
  assert.equal(err.message.split("\n").length, 7);
  for (const line of err.message.split("\n")) assert.match(line, /^p\.yaml:\d+:\d+ \S+: /);
  assert.equal(err.field, "apiVersion");
});

Deno.test("unknown fields are warnings with their position, and dropped", () => {
  const { policy, warnings } = parsePolicy(
    HEAD + `metadata: {name: x}
colour: red
rules:
  - level: None
    verb: [get]
    resources:
      - group: apps
        resource: [deployments]
`,
    "p.yaml",
  );
  assert.deepEqual(warnings, [
    'p.yaml:4:1 colour: unknown field "colour" (ignored)',
    'p.yaml:7:5 rules[0].verb: unknown field "verb" (ignored)',
    'p.yaml:10:9 rules[0].resources[0].resource: unknown field "resource" (ignored)',
  ]);
  assert.deepEqual(policy.rules, [{ level: "None", resources: [{ group: "apps" }] }]);
});

Deno.test("duplicate keys are warnings and the last value wins", () => {
  const { policy, warnings } = parsePolicy(
    HEAD + "rules:\n  - level: None\n    level: Metadata\n",
    "p.yaml",
  );
  assert.deepEqual(warnings, [
    'p.yaml:5:5 rules[0].level: duplicate field "level" (the last one is used)',
  ]);
  assert.equal(policy.rules[0].level, "Metadata");
});

Deno.test("null lists read as absent, as Go's decoder reads them", () => {
  const { policy } = parsePolicy(
    HEAD + "omitStages:\nrules:\n  - level: None\n    users: null\n",
    "p.yaml",
  );
  assert.deepEqual(policy.rules, [{ level: "None" }]);
  assert.equal(policy.omitStages, undefined);
});

Deno.test("an inline policy object is checked the same way, without positions", () => {
  assert.throws(
    () =>
      policyFromObject(
        { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{}] },
        "pipeline.yaml",
      ),
    (err: unknown) => {
      assert.ok(err instanceof PolicyError);
      assert.equal(
        err.message,
        'pipeline.yaml rules[0].level: Required value: must be one of "None", "Metadata", ' +
          '"Request", "RequestResponse"',
      );
      assert.equal(err.line, 0);
      return true;
    },
  );
  const { policy, warnings } = policyFromObject(
    { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "None", x: 1 }] },
    "pipeline.yaml",
  );
  assert.deepEqual(policy.rules, [{ level: "None" }]);
  assert.deepEqual(warnings, ['pipeline.yaml rules[0].x: unknown field "x" (ignored)']);
});

Deno.test("an inline policy's problems are placed by the position callback, or its parents", () => {
  const known: Record<string, { line: number; col: number }> = {
    "": { line: 10, col: 5 },
    "rules": { line: 12, col: 7 },
    "rules.0": { line: 13, col: 9 },
  };
  const seen: string[] = [];
  const lookup = (path: (string | number)[]) => {
    seen.push(path.join("."));
    return known[path.join(".")];
  };
  assert.throws(
    () =>
      policyFromObject(
        { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Loud" }] },
        "pipeline.yaml",
        lookup,
      ),
    (err: unknown) => {
      assert.ok(err instanceof PolicyError);
      assert.match(
        err.message,
        /^pipeline\.yaml:13:9 rules\[0\]\.level: Unsupported value: "Loud"/,
      );
      return true;
    },
  );
  assert.deepEqual(seen, ["rules.0.level", "rules.0"]);
  assert.throws(
    () => policyFromObject(null, "pipeline.yaml", lookup),
    /pipeline\.yaml:10:5: policy is empty/,
  );
});

// validation_test.go (TestValidatePolicy) from kubernetes/kubernetes, every case.
const validRules: PolicyRule[] = [
  { level: "Metadata" },
  { level: "None", userGroups: ["system:serviceaccounts", "system:nodes"] },
  {
    level: "RequestResponse",
    verbs: ["get"],
    resources: [{ group: "rbac.authorization.k8s.io", resources: ["roles", "rolebindings"] }],
    namespaces: ["kube-system"],
  },
  {
    level: "Metadata",
    userGroups: ["developers"],
    nonResourceURLs: ["/logs*", "/healthz*", "/metrics", "*"],
  },
];
const policyOf = (rules: PolicyRule[]): Policy => ({
  apiVersion: "audit.k8s.io/v1",
  kind: "Policy",
  rules,
});

Deno.test("TestValidatePolicy: every valid upstream policy validates", () => {
  const cases = [...validRules.map((r) => policyOf([r])), policyOf([]), policyOf(validRules)];
  for (const p of cases) assert.deepEqual(validatePolicy(p), [], JSON.stringify(p));
});

Deno.test("TestValidatePolicy: every invalid upstream policy fails with its reason", () => {
  const cases: [PolicyRule, RegExp][] = [
    [{} as PolicyRule, /^rules\[0\]\.level: Required value/],
    [
      {
        verbs: ["get"],
        resources: [{ resources: ["secrets"] }],
        namespaces: ["kube-system"],
      } as unknown as PolicyRule,
      /^rules\[0\]\.level: Required value/,
    ],
    [{ level: "FooBar" as Level }, /^rules\[0\]\.level: Unsupported value: "FooBar"/],
    [
      { level: "Metadata", namespaces: ["default"], nonResourceURLs: ["/logs*"] },
      /^rules\[0\]\.nonResourceURLs: Invalid value: \["\/logs\*"\]: rules cannot apply to both/,
    ],
    [
      { level: "Metadata", resources: [{ resources: ["secrets"] }], nonResourceURLs: ["/logs*"] },
      /^rules\[0\]\.nonResourceURLs: .*rules cannot apply to both/,
    ],
    [
      {
        level: "Metadata",
        resources: [{ group: "rbac.authorization.k8s.io/v1beta1", resources: ["roles"] }],
      },
      /^rules\[0\]\.resources\[0\]\.group: Invalid value: "rbac\.authorization\.k8s\.io\/v1beta1": a lowercase RFC 1123/,
    ],
    [
      { level: "Metadata", nonResourceURLs: ["logs", "/healthz*"] },
      /^rules\[0\]\.nonResourceURLs\[0\]: Invalid value: "logs": non-resource URL rules must begin/,
    ],
    [
      { level: "Metadata", nonResourceURLs: ["", "/healthz*"] },
      /^rules\[0\]\.nonResourceURLs\[0\]: Invalid value: "": non-resource URL rules must begin/,
    ],
    [
      { level: "Metadata", nonResourceURLs: ["/logs/*/*", "/metrics"] },
      /^rules\[0\]\.nonResourceURLs\[0\]: Invalid value: "\/logs\/\*\/\*": non-resource URL wildcards/,
    ],
    [
      { level: "Metadata", nonResourceURLs: ["/logs/*.log", "/metrics"] },
      /^rules\[0\]\.nonResourceURLs\[0\]: Invalid value: "\/logs\/\*\.log": non-resource URL wildcards/,
    ],
  ];
  for (const [rule, want] of cases) {
    const problems = validatePolicy(policyOf([rule]));
    assert.equal(problems.length, 1, JSON.stringify(rule));
    assert.match(`${problems[0].path}: ${problems[0].message}`, want);
    assert.equal(problems[0].line, 0);
  }
  const multi = validatePolicy(policyOf([...validRules, {} as PolicyRule]));
  assert.deepEqual(multi.map((p) => p.path), ["rules[4].level"]);
});
