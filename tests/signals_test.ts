/**
 * No signal opens a port: since Deno 2.9.2 a SIGUSR1 starts an unauthenticated V8 debugger on
 * 127.0.0.1:9229 unless the launcher blocked it. The daemon is started the ways the docs say
 * (`deno task start`, the systemd unit's ExecStart, under -A and under the flags
 * `auditpipe permissions` prints), sent every signal the docs mention and SIGUSR1, and its
 * listening sockets are read from /proc before and after.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { ROOT } from "./helpers/daemon.ts";
import { sigusr1Blocked } from "../cli/debugger_signal.ts";

const dec = new TextDecoder();

/** The listening TCP sockets (`addr:port`, hex as /proc writes them) that `pid` holds. */
async function listeningSockets(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await Deno.readLink(`/proc/${pid}/fd/${fd.name}`));
      if (m) inodes.add(m[1]);
    } catch {
      // The descriptor closed while being read.
    }
  }
  const out = new Set<string>();
  for (const table of ["tcp", "tcp6"]) {
    const text = await Deno.readTextFile(`/proc/${pid}/net/${table}`).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1], st is f[3] (0A = LISTEN), inode is f[9].
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9])) out.add(`${table} ${f[1]}`);
    }
  }
  return out;
}

/** The words of the unit's ExecStart before the deno or auditpipe binary: the launcher. */
async function unitLauncher(unit: string): Promise<string[]> {
  const text = (await Deno.readTextFile(`${ROOT}deploy/${unit}`)).replace(/\\\n/g, " ");
  const exec = /^ExecStart=(.*)$/m.exec(text);
  assert(exec, `${unit} has no ExecStart`);
  const words = exec[1].trim().split(/\s+/);
  const bin = words.findIndex((w) => /\/(deno|auditpipe)$/.test(w));
  assert(bin >= 0, `${unit}: no deno or auditpipe binary in ExecStart`);
  return words.slice(0, bin);
}

interface Started {
  readonly process: Deno.ChildProcess;
  /** Everything on stderr so far (the daemon's JSON logs and anything Deno prints). */
  stderr(): string;
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** The daemon's own pid (from its log), whatever launched it. */
  daemonPid(): Promise<number>;
}

function launch(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }) {
  const process = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", ...(opts.env ?? {}) },
  }).spawn();
  let err = "";
  const done = (async () => {
    for await (const part of process.stderr.pipeThrough(new TextDecoderStream())) err += part;
  })();
  const waitFor = async (text: string, timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs;
    while (!err.includes(text)) {
      if (Date.now() > until) throw new Error(`no "${text}" on stderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const started: Started & { done: Promise<void> } = {
    process,
    done,
    stderr: () => err,
    waitFor,
    async daemonPid() {
      await waitFor('"msg":"auditpipe starting"');
      const line = err.split("\n").find((l) => l.includes('"msg":"auditpipe starting"'))!;
      return JSON.parse(line).pid as number;
    },
  };
  return started;
}

async function writeConfig(dir: string): Promise<string> {
  const cfg = `${dir}/pipeline.yaml`;
  await Deno.writeTextFile(
    cfg,
    `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    path: ${dir}/out/audit.log
server:
  listen: 127.0.0.1:0
`,
  );
  return cfg;
}

async function permissionFlags(cfg: string, pidFile: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "permissions", "--config", cfg, "--pid-file", pidFile],
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(out.code, 0, dec.decode(out.stderr));
  return dec.decode(out.stdout).trim().split(" ");
}

/**
 * Sends SIGHUP and SIGUSR1 to a running daemon and checks that neither opened a socket nor
 * started a debugger; then SIGTERM, and the launcher's exit status must be 0.
 */
async function assertSignalsOpenNothing(d: Started & { done: Promise<void> }, pidFile: string) {
  const pid = await d.daemonPid();
  try {
    assertEquals(await Deno.readTextFile(pidFile), `${pid}\n`);
    await signalAndCheck(d, pid);
    await assertRejects(() => Deno.stat(pidFile), /No such file/);
  } catch (err) {
    // A launcher in between may not pass the kill on: leave no daemon (or debugger) behind.
    for (const p of [pid, d.process.pid]) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch { /* gone */ }
    }
    await d.done;
    throw err;
  }
}

async function signalAndCheck(d: Started & { done: Promise<void> }, pid: number) {
  await d.waitFor('"msg":"ops server listening"');
  await d.waitFor('"msg":"webhook source listening"');
  const before = await listeningSockets(pid);
  assertEquals(before.size, 2, `expected the webhook and ops listeners: ${[...before]}`);

  Deno.kill(pid, "SIGHUP");
  await d.waitFor('"msg":"config reloaded"');
  Deno.kill(pid, "SIGUSR1");
  // The debugger binds within milliseconds of the signal; watch for a while under load.
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    const now = await listeningSockets(pid);
    const added = [...now].filter((s) => !before.has(s));
    assertEquals(added, [], `a signal opened a listening socket:\n${d.stderr()}`);
    // When 9229 is taken Deno says "Failed to start inspector server" instead: still armed.
    assert(!/Debugger listening|inspector server/i.test(d.stderr()), d.stderr());
    await new Promise((r) => setTimeout(r, 100));
  }
  Deno.kill(pid, "SIGTERM");
  const st = await d.process.status;
  await d.done;
  assertEquals(st.code, 0, d.stderr());
  assert(!/Debugger listening|inspector server/i.test(d.stderr()), d.stderr());
  assert(!d.stderr().includes("SIGUSR1 is not blocked"), d.stderr());
}

const linux = Deno.build.os === "linux";

Deno.test({
  name: "deno task start: SIGHUP and SIGUSR1 open no socket and no debugger; SIGTERM exits 0",
  ignore: !linux,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-signals-" });
    const cfg = await writeConfig(dir);
    // `deno task` finds `deno` on PATH, as npx arranges for `npx -y deno@2.9.6 task start`.
    const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
    const d = launch(
      Deno.execPath(),
      [
        "task",
        "--config",
        `${ROOT}deno.json`,
        "start",
        "--config",
        cfg,
        "--pid-file",
        `${dir}/auditpipe.pid`,
      ],
      { cwd: ROOT, env: { PATH: `${denoDir}:${Deno.env.get("PATH") ?? ""}` } },
    );
    await assertSignalsOpenNothing(d, `${dir}/auditpipe.pid`);
    await Deno.remove(dir, { recursive: true });
  },
});

for (const mode of ["-A", "the flags `auditpipe permissions` prints"]) {
  Deno.test({
    name:
      `deploy/auditpipe.service's launcher, ${mode}: SIGHUP and SIGUSR1 open no socket and no debugger`,
    ignore: !linux,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "auditpipe-signals-" });
      const cfg = await writeConfig(dir);
      const pidFile = `${dir}/auditpipe.pid`;
      const flags = mode === "-A" ? ["-A"] : await permissionFlags(cfg, pidFile);
      const [cmd, ...args] = [
        ...await unitLauncher("auditpipe.service"),
        Deno.execPath(),
        "run",
        ...flags,
        `${ROOT}main.ts`,
        "--config",
        cfg,
        "--pid-file",
        pidFile,
      ];
      const d = launch(cmd, args, { cwd: dir });
      await assertSignalsOpenNothing(d, pidFile);
      await Deno.remove(dir, { recursive: true });
    },
  });
}

Deno.test("both systemd units start auditpipe through the same SIGUSR1-blocking launcher", async () => {
  const a = await unitLauncher("auditpipe.service");
  const b = await unitLauncher("auditpipe-binary.service");
  assertEquals(a, b);
  assertEquals(a.slice(1), ["--block-signal=USR1"]);
  assert(/\/env$/.test(a[0]), a[0]);
});

Deno.test({
  name: "started without the launcher, the daemon warns that SIGUSR1 would open a debugger",
  ignore: !linux,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-signals-" });
    const cfg = await writeConfig(dir);
    const d = launch(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, "--config", cfg], {
      cwd: dir,
    });
    await d.waitFor('"msg":"ops server listening"');
    assert(d.stderr().includes("SIGUSR1 is not blocked"), d.stderr());
    d.process.kill("SIGTERM");
    assertEquals((await d.process.status).code, 0);
    await d.done;
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("sigusr1Blocked reads SIGUSR1's bit (10, so bit 9) of a /proc status SigBlk mask", () => {
  assertEquals(sigusr1Blocked("Name:\tdeno\nSigBlk:\t0000000000000200\nSigIgn:\t0\n"), true);
  assertEquals(sigusr1Blocked("SigBlk:\tfffffffe7ffbfeff\n"), true);
  assertEquals(sigusr1Blocked("SigBlk:\t0000000000000100\n"), false);
  // Ignored is not enough (Deno installs a handler over SIG_IGN), so SigIgn does not count.
  assertEquals(sigusr1Blocked("SigBlk:\t0000000000000000\nSigIgn:\t0000000000000200\n"), false);
  assertEquals(sigusr1Blocked("Name:\tdeno\n"), undefined);
});

/** The first ```sh block of README.md's Quickstart section. */
async function quickstartScript(): Promise<string> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("## Quickstart"));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  assert(m, "README.md has no Quickstart sh block");
  return m[1];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Copies what `deno task start` needs into `to`: the config, the code, deno.json and lock. */
async function copyForTask(to: string, ports: Map<string, string>) {
  const copy = async (rel: string) => {
    const st = await Deno.stat(`${ROOT}${rel}`);
    if (st.isDirectory) {
      await Deno.mkdir(`${to}/${rel}`, { recursive: true });
      for await (const e of Deno.readDir(`${ROOT}${rel}`)) await copy(`${rel}/${e.name}`);
    } else await Deno.copyFile(`${ROOT}${rel}`, `${to}/${rel}`);
  };
  for (
    const rel of ["main.ts", "deno.json", "deno.lock", "cli", "pipeline", "policy", "backends"]
  ) {
    await copy(rel);
  }
  let cfg = await Deno.readTextFile(`${ROOT}config.example.yaml`);
  for (const [from, port] of ports) cfg = cfg.replaceAll(from, port);
  await Deno.writeTextFile(`${to}/config.example.yaml`, cfg);
}

function hasCommand(name: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

Deno.test({
  name: "the README Quickstart, pasted into a script, stops the daemon itself and exits 0",
  ignore: !linux || !hasCommand("npx") || !hasCommand("curl"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-quickstart-" });
    // The documented ports, moved to free ones so the test runs beside anything else.
    const ports = new Map([["8080", String(freePort())], ["9090", String(freePort())]]);
    await copyForTask(dir, ports);
    let script = await quickstartScript();
    for (const [from, port] of ports) script = script.replaceAll(from, port);
    await Deno.writeTextFile(`${dir}/quickstart.sh`, script);
    const sh = new Deno.Command("bash", {
      args: ["quickstart.sh"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let stdout = "";
    let stderr = "";
    // Read as it comes: a daemon left running holds the pipes open after bash has exited.
    const reading = Promise.all([
      (async () => {
        for await (const p of sh.stdout.pipeThrough(new TextDecoderStream())) stdout += p;
      })(),
      (async () => {
        for await (const p of sh.stderr.pipeThrough(new TextDecoderStream())) stderr += p;
      })(),
    ]);
    // A stop that does not stop leaves the script's last `wait` waiting: bound it.
    const timer = setTimeout(() => {
      try {
        sh.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, 120_000);
    const status = await sh.status;
    clearTimeout(timer);
    const started = stderr.split("\n").find((l) => l.includes('"msg":"auditpipe starting"'));
    const pid = started ? JSON.parse(started).pid as number : undefined;
    // The daemon's parent is `deno task`; both hold the pipes if the stop missed them.
    const leftovers = pid === undefined ? [] : [pid, parentOf(pid)].filter((p) => p !== undefined);
    const alive = pid !== undefined && parentOf(pid) !== undefined;
    for (const p of leftovers) {
      try {
        Deno.kill(p!, "SIGKILL");
      } catch { /* gone */ }
    }
    await reading;
    await Deno.remove(dir, { recursive: true });
    assert(pid !== undefined, `the daemon never started:\n${stderr}`);
    assert(!alive, `the daemon (pid ${pid}) was still running after the Quickstart:\n${stderr}`);
    assertEquals(status.code, 0, `${stdout}\n${stderr}`);
    assert(stdout.includes('{"accepted":1,"rejected":0}'), stdout);
    assert(stderr.includes('"msg":"auditpipe stopped"'), stderr);
  },
});

/** The parent pid of a running (not zombie) process, or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return state === "Z" ? undefined : Number(ppid);
  } catch {
    return undefined;
  }
}
