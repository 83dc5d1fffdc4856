/**
 * Keys for tamper-evident log sinks: `auditpipe keygen` and how a config reads them.
 */
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { loadConfigText } from "../pipeline/config/load.ts";
import { loadResources } from "../pipeline/config/files.ts";
import { ConfigError } from "../pipeline/config/errors.ts";
import { keygenCommand } from "../cli/keygen.ts";
import { withTempDir } from "./helpers/tmp.ts";

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-keys-", fn);

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const { log, error } = console;
  console.log = console.error = () => {};
  try {
    return await fn();
  } finally {
    Object.assign(console, { log, error });
  }
}

const config = (key: string, extra = "") =>
  `sources:
  - type: stdin
sinks:
  - type: log
    path: audit.log
    integrity:
      signingKey: ${key}${extra}
`;

async function resolve(dir: string, text: string) {
  return await loadResources(loadConfigText(text, `${dir}/pipeline.yaml`, () => undefined));
}

Deno.test("keygen writes an Ed25519 pair: the private key 0600, the public key 0644", async () => {
  await withDir(async (dir) => {
    const out = `${dir}/keys`;
    assert.equal(await quietly(() => keygenCommand(["--out", out])), 0);
    const priv = await Deno.stat(`${out}/auditpipe-signing.key`);
    const pub = await Deno.stat(`${out}/auditpipe-signing.pub`);
    assert.equal(priv.mode! & 0o777, 0o600);
    assert.equal(pub.mode! & 0o777, 0o644);
    const key = createPrivateKey(await Deno.readTextFile(`${out}/auditpipe-signing.key`));
    assert.equal(key.asymmetricKeyType, "ed25519");
    const pubKey = createPublicKey(await Deno.readTextFile(`${out}/auditpipe-signing.pub`));
    assert.equal(pubKey.asymmetricKeyType, "ed25519");
  });
});

Deno.test("keygen never overwrites a key (exit 1) and needs --out (exit 2)", async () => {
  await withDir(async (dir) => {
    assert.equal(await quietly(() => keygenCommand(["--out", dir])), 0);
    const before = await Deno.readTextFile(`${dir}/auditpipe-signing.key`);
    assert.equal(await quietly(() => keygenCommand(["--out", dir])), 1);
    assert.equal(await Deno.readTextFile(`${dir}/auditpipe-signing.key`), before);
    assert.equal(await quietly(() => keygenCommand([])), 2);
  });
});

Deno.test("config: a signing key made by keygen is read when the config loads, relative to it", async () => {
  await withDir(async (dir) => {
    await quietly(() => keygenCommand(["--out", dir]));
    const { resources, problems } = await resolve(
      dir,
      config("auditpipe-signing.key", "\n      checkpointEvery: {events: 50}"),
    );
    assert.deepEqual(problems, []);
    const sink = resources.sinks[0];
    assert.equal(sink.signingKey?.asymmetricKeyType, "ed25519");
    assert.ok(sink.config.type === "log");
    assert.deepEqual(sink.config.integrity?.checkpointEvery, { events: 50, interval: 10_000 });
  });
});

Deno.test("config: a missing signing key is a problem at its file:line", async () => {
  await withDir(async (dir) => {
    const { problems } = await resolve(dir, config("nope.key"));
    assert.equal(problems.length, 1);
    assert.match(
      new ConfigError(problems).message,
      new RegExp(
        `^${dir}/pipeline\\.yaml:7:7 sinks\\[0\\]\\.integrity\\.signingKey: file not found: ${dir}/nope\\.key`,
      ),
    );
  });
});

Deno.test("config: a group- or world-readable signing key is a problem naming the chmod", async () => {
  await withDir(async (dir) => {
    await quietly(() => keygenCommand(["--out", dir]));
    for (const mode of [0o644, 0o640]) {
      await Deno.chmod(`${dir}/auditpipe-signing.key`, mode);
      const { problems } = await resolve(dir, config("auditpipe-signing.key"));
      assert.equal(problems.length, 1);
      assert.match(
        new ConfigError(problems).message,
        new RegExp(
          `pipeline\\.yaml:7:7 sinks\\[0\\]\\.integrity\\.signingKey: private key is readable by others \\(mode 0${
            mode.toString(8)
          }\\); run: chmod 600 ${dir}/auditpipe-signing\\.key`,
        ),
      );
    }
  });
});

Deno.test("config: a public key or other file given as signing key is a problem", async () => {
  await withDir(async (dir) => {
    await quietly(() => keygenCommand(["--out", dir]));
    await Deno.chmod(`${dir}/auditpipe-signing.pub`, 0o600);
    const { problems } = await resolve(dir, config("auditpipe-signing.pub"));
    assert.equal(problems.length, 1);
    assert.match(problems[0].message, /not a PEM private key/);
  });
});

Deno.test("keygen and verify load no daemon module: only cli/verify/, the chain format and the CLI's progress bar", async () => {
  for (const entry of ["cli/verify/main.ts", "cli/keygen.ts"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string }[];
    };
    const root = new URL("..", import.meta.url).href;
    const local = info.modules.map((m) => m.specifier).filter((s) => s.startsWith(root))
      .map((s) => s.slice(root.length));
    for (const m of local) {
      assert.ok(
        m.startsWith("cli/verify/") || m === "cli/keygen.ts" ||
          m === "backends/integrity/format.ts" || m === "cli/progress.ts" ||
          m === "cli/write_all.ts",
        `${entry} loads ${m}`,
      );
    }
  }
});
