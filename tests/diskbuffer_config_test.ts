/**
 * A sink's `buffer` key: defaults, sizes as numbers or strings, errors at their keys, the
 * folder `--check` judges and `permissions` grants.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { ConfigError } from "../pipeline/config/errors.ts";
import { parseSize } from "../pipeline/config/schema.ts";
import { preflight } from "../pipeline/config/preflight.ts";
import { requiredPermissions } from "../pipeline/permissions.ts";
import type { Resources } from "../pipeline/config/files.ts";

function problems(text: string): string[] {
  try {
    loadConfigText(text, "pipeline.yaml");
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split("\n");
    throw err;
  }
  return [];
}

const head = `sources:\n  - type: stdin\nsinks:\n  - type: stdout\n`;

Deno.test("buffer: a sink without one keeps its events in memory; disk defaults are 1GiB, block, fsync always", () => {
  const { config } = loadConfigText(
    head + `  - type: log\n    path: a.log\n    buffer: {type: disk, path: buf}\n`,
    "/etc/auditpipe/pipeline.yaml",
  );
  assertEquals(config.sinks[0].buffer.type, "memory");
  assertEquals(config.sinks[1].buffer, {
    type: "disk",
    path: "/etc/auditpipe/buf",
    maxBytes: 1024 ** 3,
    whenFull: "block",
    fsync: "always",
  });
});

Deno.test("buffer: maxBytes is a number of bytes or a string with a unit", () => {
  assertEquals(parseSize("512MiB"), 512 * 1024 * 1024);
  assertEquals(parseSize("2GB"), 2e9);
  assertEquals(parseSize(4096), 4096);
  assertEquals(parseSize("10 KiB"), 10240);
  assertEquals(parseSize("1.5x"), null);
  assertEquals(parseSize(0), null);
  const { config } = loadConfigText(
    head +
      `    buffer: {type: disk, path: /b, maxBytes: 64KiB, whenFull: dropNewest, fsync: never}\n`,
    "pipeline.yaml",
  );
  assertEquals(config.sinks[0].buffer.maxBytes, 65536);
  assertEquals(config.sinks[0].buffer.whenFull, "dropNewest");
  assertEquals(config.sinks[0].buffer.fsync, "never");
});

Deno.test("buffer: bad values are named at their keys with positions", () => {
  const p = problems(
    head +
      `    buffer:\n      type: tape\n      maxBytes: lots\n      whenFull: wait\n  - type: stdout\n    name: two\n    buffer: {type: disk}\n`,
  );
  const has = (s: string) => assert(p.some((l) => l.includes(s)), `${s}\n${p.join("\n")}`);
  has("pipeline.yaml:6:7 sinks[0].buffer.type: must be one of memory, disk");
  has(
    `pipeline.yaml:7:7 sinks[0].buffer.maxBytes: must be a size like 512MiB, 1GiB or 1048576, got "lots"`,
  );
  has("pipeline.yaml:8:7 sinks[0].buffer.whenFull: must be one of block, dropNewest");
  has("pipeline.yaml:11:5 sinks[1].buffer.path: a disk buffer needs a path (its own folder)");
});

Deno.test("buffer: --check names a disk buffer path that is a file, and accepts a folder to be made", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bufcfg-" });
  try {
    await Deno.writeTextFile(`${dir}/afile`, "");
    const loaded = loadConfigText(
      head +
        `    buffer: {type: disk, path: afile}\n  - type: stdout\n    name: b\n    buffer: {type: disk, path: new/buf}\n`,
      `${dir}/pipeline.yaml`,
    );
    const found = await preflight(loaded);
    assertEquals(found.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`), [
      `5:26 sinks[0].buffer.path: ${dir}/afile is a file, not a folder`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buffer: permissions grant read and write on a disk buffer's folder", () => {
  const loaded = loadConfigText(
    head + `    buffer: {type: disk, path: /var/lib/auditpipe/stdout}\n`,
    "/etc/auditpipe/pipeline.yaml",
  );
  const resources = { sinks: [], sources: [] } as unknown as Resources;
  const p = requiredPermissions(loaded, resources);
  assert(p.read.includes("/var/lib/auditpipe/stdout"), p.read.join(","));
  assert(p.write.includes("/var/lib/auditpipe/stdout"), p.write.join(","));
});
