/**
 * The gate for tests that start external programs: ignored with the reason in the name when
 * the program is missing, run (and failing with what to install) under
 * AUDITPIPE_REQUIRE_EXTERNAL=1. Environments are passed in, so nothing here changes the
 * process's own.
 */
import assert from "node:assert/strict";
import { hasProgram, needs, requireProgram } from "./helpers/external.ts";

/** An environment of `vars` only. */
const env = (vars: Record<string, string>) => (k: string): string | undefined => vars[k];

async function withBin(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bin-" });
  try {
    await Deno.writeTextFile(`${dir}/nats-server`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/openssl`, "not executable\n", { mode: 0o644 });
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("external: a program is found as an executable file in a PATH folder, not as a plain file", () =>
  withBin((dir) => {
    assert.equal(hasProgram("nats-server", env({ PATH: `/nonexistent:${dir}` })), true);
    assert.equal(hasProgram("openssl", env({ PATH: dir })), false, "not executable");
    assert.equal(hasProgram("nats-server", env({ PATH: "" })), false);
    assert.equal(hasProgram("nats-server", env({})), false);
  }));

Deno.test("external: NATS_SERVER names the server binary by path", () =>
  withBin((dir) => {
    assert.equal(hasProgram("nats-server", env({ NATS_SERVER: `${dir}/nats-server` })), true);
    assert.equal(hasProgram("nats-server", env({ NATS_SERVER: `${dir}/nope`, PATH: dir })), false);
  }));

Deno.test("external: a test needing a missing program is ignored with the reason in its name", () =>
  withBin((dir) => {
    const e = env({ PATH: dir });
    assert.deepEqual(needs("nats-server", "nats: publishes", e), {
      name: "nats: publishes",
      ignore: false,
    });
    assert.deepEqual(needs(["nats-server", "openssl"], "nats: over TLS", e), {
      name: "nats: over TLS (openssl not installed)",
      ignore: true,
    });
    assert.deepEqual(needs(["openssl", "nats-server"], "both", env({ PATH: "/nonexistent" })), {
      name: "both (openssl and nats-server not installed)",
      ignore: true,
    });
  }));

Deno.test("external: AUDITPIPE_REQUIRE_EXTERNAL=1 runs the test instead, and it fails saying what to install", () => {
  const e = env({ PATH: "/nonexistent", AUDITPIPE_REQUIRE_EXTERNAL: "1" });
  assert.deepEqual(needs("openssl", "tls: handshake", e), {
    name: "tls: handshake (openssl not installed)",
    ignore: false,
  });
  assert.throws(
    () => requireProgram("openssl", e),
    /openssl not installed .*AUDITPIPE_REQUIRE_EXTERNAL=1 requires it: apt-get install openssl/,
  );
});
