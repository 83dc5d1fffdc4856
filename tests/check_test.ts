/**
 * `--check` finds what would stop the daemon from starting, without starting anything:
 * ports out of range or taken twice by the config, output folders that are files or that
 * the daemon may not write.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { ROOT } from "./helpers/daemon.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { formatProblem } from "../pipeline/config/errors.ts";
import { preflight } from "../pipeline/config/preflight.ts";

/** Runs `--check` on `config` (a function of a fresh temp dir); the dir is the caller's. */
async function check(
  config: (dir: string) => string,
  permissions: string[] = ["-A"],
): Promise<{ dir: string; code: number; stderr: string; stdout: string }> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-check-" });
  await Deno.writeTextFile(`${dir}/pipeline.yaml`, config(dir));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, `${ROOT}main.ts`, "--config", `${dir}/pipeline.yaml`, "--check"],
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { dir, code: out.code, stderr: dec.decode(out.stderr), stdout: dec.decode(out.stdout) };
}

/** Whether one line of `text` ends with `suffix` (problems start with the config's path). */
/** That a line of `text` ends with `suffix`; the message is all of `text`. */
function assertLine(text: string, suffix: string): void {
  assert(text.split("\n").some((l) => l.endsWith(suffix)), text);
}

Deno.test("--check names ports out of range and a port the config uses twice, at their keys", async () => {
  const r = await check(() => `
sources:
  - type: webhook
    name: a
    listen: 127.0.0.1:99999
  - type: webhook
    name: b
    listen: 127.0.0.1:18443
  - type: webhook
    name: c
    listen: :18443
server:
  listen: 127.0.0.1:70000
sinks:
  - type: stdout
`);
  assertEquals(r.code, 2, r.stderr);
  assertLine(
    r.stderr,
    "pipeline.yaml:5:5 sources[0].listen: port 99999 is out of range: must be 0-65535",
  );
  assertLine(
    r.stderr,
    "pipeline.yaml:11:5 sources[2].listen: port 18443 is already used by sources[1].listen",
  );
  assertLine(
    r.stderr,
    "pipeline.yaml:13:3 server.listen: port 70000 is out of range: must be 0-65535",
  );
  assert(r.stderr.includes("3 problems found"), r.stderr);
  await Deno.remove(r.dir, { recursive: true });
});

Deno.test("--check names output paths that cannot be created: under a file, a folder in the way, a dead-letter folder missing", async () => {
  const r = await check((dir) => {
    Deno.writeTextFileSync(`${dir}/afile`, "");
    Deno.writeTextFileSync(`${dir}/audit.log`, "");
    Deno.mkdirSync(`${dir}/adir`);
    return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    deadLetterFile: afile/dead.jsonl
  - type: tail
    path: audit.log
    checkpointFile: afile/deeper/tail.pos
  - type: webhook
    name: other
    listen: 127.0.0.1:0
    deadLetterFile: missing/dead.jsonl
sinks:
  - type: log
    path: afile/out.log
  - type: log
    name: second
    path: adir
`;
  });
  assertEquals(r.code, 2, r.stderr);
  const file = `${r.dir}/afile`;
  assertLine(
    r.stderr,
    `pipeline.yaml:5:5 sources[0].deadLetterFile: cannot create ${file}/dead.jsonl: ${file} is a file, not a folder`,
  );
  assertLine(
    r.stderr,
    `pipeline.yaml:8:5 sources[1].checkpointFile: cannot create ${file}/deeper/tail.pos: ${file} is a file, not a folder`,
  );
  assertLine(
    r.stderr,
    `pipeline.yaml:15:5 sinks[0].path: cannot create ${file}/out.log: ${file} is a file, not a folder`,
  );
  assertLine(
    r.stderr,
    `pipeline.yaml:12:5 sources[2].deadLetterFile: cannot create ${r.dir}/missing/dead.jsonl: folder ${r.dir}/missing does not exist`,
  );
  assertLine(
    r.stderr,
    `pipeline.yaml:18:5 sinks[1].path: ${r.dir}/adir is a directory, not a file`,
  );
  await Deno.remove(r.dir, { recursive: true });
});

Deno.test("--check names a log folder outside the daemon's --allow-write", async () => {
  const r = await check(
    (dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    path: ${dir}/locked/sub/out.log
`,
    ["--allow-read", "--allow-env", "--allow-write=/nonexistent-auditpipe-test"],
  );
  assertEquals(r.code, 2, r.stderr);
  assertLine(
    r.stderr,
    `pipeline.yaml:7:5 sinks[0].path: cannot write ${r.dir}/locked/sub/out.log: Deno's --allow-write does not include it`,
  );
  await Deno.remove(r.dir, { recursive: true });
});

Deno.test("--check creates nothing: output folders the daemon would make are OK and still missing after", async () => {
  const r = await check((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    deadLetterFile: ${dir}/dead-letters.jsonl
  - type: tail
    path: ${dir}/pipeline.yaml
    checkpointFile: ${dir}/state/tail.pos
sinks:
  - type: log
    path: ${dir}/not/yet/out.log
`);
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("OK"), r.stdout);
  assertEquals([...Deno.readDirSync(r.dir)].map((e) => e.name), ["pipeline.yaml"]);
  await Deno.remove(r.dir, { recursive: true });
});

Deno.test("preflight judges permission bits for the user the daemon runs as", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-check-" });
  await Deno.mkdir(`${dir}/ro`);
  await Deno.chmod(`${dir}/ro`, 0o555);
  await Deno.mkdir(`${dir}/group`);
  await Deno.chmod(`${dir}/group`, 0o775);
  await Deno.writeTextFile(`${dir}/kept.log`, "");
  await Deno.chmod(`${dir}/kept.log`, 0o644);
  const { uid, gid } = Deno.statSync(dir);
  const loaded = loadConfigText(
    `sources:
  - type: webhook
sinks:
  - type: log
    name: ro
    path: ro/new/out.log
  - type: log
    name: group
    path: group/out.log
  - type: log
    name: kept
    path: kept.log
`,
    `${dir}/pipeline.yaml`,
  );
  const other = { uid: uid! + 4242, gid: gid! + 4242 };
  const problems = (await preflight(loaded, { ids: other })).map(formatProblem);
  const who = `owner ${uid}:${gid}, running as ${other.uid}:${other.gid}`;
  assertEquals(problems, [
    `${dir}/pipeline.yaml:6:5 sinks[0].path: cannot create ${dir}/ro/new/out.log: ${dir}/ro is not writable: mode 555, ${who}`,
    // Group bits that allow may be the daemon's through a supplementary group: not reported.
    `${dir}/pipeline.yaml:12:5 sinks[2].path: ${dir}/kept.log is not writable: mode 644, ${who}`,
  ]);
  assertEquals(await preflight(loaded, { ids: { uid: uid!, gid: gid! } }), []);
  assertEquals(await preflight(loaded, { ids: null }), [], "bits unknown: nothing denied");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--check under the least permissions 'auditpipe permissions' prints finds nothing wrong with folders still to be made", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-check-" });
  await Deno.writeTextFile(`${dir}/audit.log`, "");
  await Deno.writeTextFile(
    `${dir}/pipeline.yaml`,
    `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    deadLetterFile: dead.jsonl
  - type: tail
    path: audit.log
    checkpointFile: state/tail.pos
sinks:
  - type: log
    path: out/sub/audit.log
`,
  );
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), { args, env: { NO_COLOR: "1" } }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const perms = await run([
    "run",
    "-A",
    `${ROOT}main.ts`,
    "permissions",
    "--config",
    `${dir}/pipeline.yaml`,
  ]);
  assertEquals(perms.code, 0, perms.stderr);
  const flags = perms.stdout.trim().split("\n").at(-1)!.split(" ");
  assert(flags.some((f) => f.startsWith("--allow-write=")), perms.stdout);
  const r = await run([
    "run",
    ...flags,
    `${ROOT}main.ts`,
    "--config",
    `${dir}/pipeline.yaml`,
    "--check",
  ]);
  assertEquals(r.code, 0, r.stderr);
  await Deno.remove(dir, { recursive: true });
});
