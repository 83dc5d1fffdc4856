/**
 * The systemd units and the node pipeline in deploy/ agree: the units grant exactly what
 * `auditpipe permissions` prints for deploy/pipeline.yaml, may bind only the ports it names,
 * carry every hardening line deploy/README.md explains, and score at most 2.0 in
 * `systemd-analyze security` (where systemd-analyze is installed).
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { ROOT } from "./helpers/daemon.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { permissionFlags, requiredPermissions } from "../pipeline/permissions.ts";
import { loadKubeconfig } from "../backends/kubeconfig.ts";
import type { Resources } from "../pipeline/config/files.ts";

const UNITS = ["auditpipe.service", "auditpipe-binary.service"];

/** deploy/pipeline.yaml as it is installed, with the files it names read from deploy/. */
async function deployedConfig() {
  const text = await Deno.readTextFile(`${ROOT}deploy/pipeline.yaml`);
  const loaded = loadConfigText(text, "/etc/auditpipe/pipeline.yaml", () => "prod");
  // The SIEM kubeconfig is deploy/siem.kubeconfig; the CA and token it names exist only on a
  // node, so they are stood in for (their contents do not change the permissions).
  const readFile = async (path: string) => {
    if (path === "/etc/auditpipe/siem.kubeconfig") {
      return await Deno.readTextFile(`${ROOT}deploy/siem.kubeconfig`);
    }
    if (path.endsWith(".crt")) {
      return "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    }
    if (path.endsWith(".token")) return "t0ken\n";
    throw new Deno.errors.NotFound(path);
  };
  // Only what `permissions` reads: each sink's config and a webhook sink's target.
  const sinks = await Promise.all(loaded.config.sinks.map(async (config) => ({
    config,
    policy: null,
    target: config.type === "webhook"
      ? await loadKubeconfig(config.kubeconfig, { readFile })
      : undefined,
    fingerprint: "",
  })));
  const resources: Resources = { sources: [], sinks, warnings: [] };
  return { loaded, resources };
}

/** The unit with continuation lines joined. */
async function unit(name: string): Promise<string> {
  return (await Deno.readTextFile(`${ROOT}deploy/${name}`)).replace(/\\\n\s*/g, " ");
}

/** Every `Key=value` line of the [Service] section, in order. */
function serviceLines(text: string): string[] {
  const service = text.slice(text.search(/^\[Service\]$/m), text.search(/^\[Install\]$/m));
  return service.split("\n").filter((l) => /^\w+=/.test(l));
}

Deno.test("deploy/pipeline.yaml takes one intake per node and sends to the SIEM through deploy/siem.kubeconfig", async () => {
  const { loaded, resources } = await deployedConfig();
  assertEquals(loaded.config.sources.map((s) => s.type), ["tail"]);
  const siem = loaded.config.sinks.find((s) => s.type === "webhook");
  assert(siem && siem.type === "webhook", "no webhook sink for the SIEM");
  assertEquals(siem.kubeconfig, "/etc/auditpipe/siem.kubeconfig");
  assertEquals(typeof siem.policy, "string");
  const target = resources.sinks[loaded.config.sinks.indexOf(siem)].target;
  assertEquals(target?.url.protocol, "https:");
});

Deno.test("deploy/auditpipe.service grants exactly what `auditpipe permissions` prints for deploy/pipeline.yaml", async () => {
  const { loaded, resources } = await deployedConfig();
  const flags = permissionFlags(requiredPermissions(loaded, resources));
  const granted = [...(await unit("auditpipe.service")).matchAll(/--allow-\w+=\S+/g)].map((m) =>
    m[0]
  );
  assertEquals(granted, flags);
});

Deno.test("both units may bind only the ports deploy/pipeline.yaml listens on, and nothing else", async () => {
  const { loaded } = await deployedConfig();
  const listens = [
    loaded.config.server.listen,
    ...loaded.config.sources.map((s) => s.type === "webhook" ? s.listen : undefined),
  ].filter((l): l is string => typeof l === "string");
  const ports = listens.map((l) => `tcp:${l.slice(l.lastIndexOf(":") + 1)}`).sort();
  for (const name of UNITS) {
    const lines = serviceLines(await unit(name));
    const allow = lines.filter((l) => l.startsWith("SocketBindAllow=")).flatMap((l) =>
      l.slice("SocketBindAllow=".length).split(/\s+/)
    );
    assertEquals(allow.sort(), ports, name);
    assert(lines.includes("SocketBindDeny=any"), `${name}: no SocketBindDeny=any`);
  }
});

Deno.test("both units carry the same hardening, every line of it explained in deploy/README.md", async () => {
  const readme = await Deno.readTextFile(`${ROOT}deploy/README.md`);
  const required = [
    "UMask=0077",
    "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native",
    "ProtectClock=yes",
    "ProtectKernelLogs=yes",
    "RestrictSUIDSGID=yes",
    "NoNewPrivileges=yes",
    "SocketBindDeny=any",
  ];
  const [a, b] = await Promise.all(UNITS.map(async (n) => serviceLines(await unit(n))));
  const hardening = (lines: string[]) =>
    lines.filter((l) =>
      !/^(ExecStart|ExecReload|Environment|ReadWritePaths|CacheDirectory|User|Group|Type|TimeoutStopSec|KillSignal|Restart|RestartSec)=/
        .test(l)
    );
  assertEquals(hardening(a), hardening(b));
  for (const line of required) assert(a.includes(line), `auditpipe.service lacks ${line}`);
  for (const line of hardening(a)) {
    const key = line.slice(0, line.indexOf("="));
    assert(readme.includes(`\`${key}=`), `deploy/README.md does not explain ${key}=`);
  }
});

Deno.test({
  name: "systemd-analyze security rates both units 2.0 or better",
  async fn(t) {
    for (const name of UNITS) {
      let out;
      try {
        out = await new Deno.Command("systemd-analyze", {
          args: ["security", "--offline=true", "--no-pager", `${ROOT}deploy/${name}`],
          stdout: "piped",
          stderr: "piped",
          env: { SYSTEMD_COLORS: "0" },
        }).output();
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          await t.step({ name: "systemd-analyze is not installed", ignore: true, fn() {} });
          return;
        }
        throw err;
      }
      const text = new TextDecoder().decode(out.stdout);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(text);
      assert(m, `${name}: no score in:\n${text}${new TextDecoder().decode(out.stderr)}`);
      assert(Number(m[1]) <= 2.0, `${name} scores ${m[1]}:\n${text}`);
    }
  },
});
