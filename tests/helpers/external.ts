/**
 * Tests that start an external program (`nats-server`, `openssl`, `chromium`, `tmux`) run when
 * it is on PATH. When it is missing they are reported as ignored, with the reason in the test's
 * name, so that a fresh clone with only Deno passes and says what it skipped. CI sets
 * `AUDITPIPE_REQUIRE_EXTERNAL=1`: then a missing program fails the test, naming how to
 * install it, instead of hiding the tests.
 *
 * @module
 */

/** The external programs some tests need, and how to get each. */
export const PROGRAMS = {
  "nats-server": {
    /** `NATS_SERVER` may name the binary (a path or a name on PATH). */
    command: (env: Env = processEnv) => env("NATS_SERVER") ?? "nats-server",
    install:
      "apt-get install nats-server, or a release from https://github.com/nats-io/nats-server/releases",
  },
  openssl: {
    command: (_env: Env = processEnv) => "openssl",
    install: "apt-get install openssl",
  },
  /** Opens the HTML report headless; `CHROMIUM` may name the binary (a path or a name). */
  chromium: {
    command: (env: Env = processEnv) => env("CHROMIUM") ?? "chromium",
    install: "apt-get install chromium",
  },
  /** A real terminal for `auditpipe top` and progress bars. */
  tmux: {
    command: (_env: Env = processEnv) => "tmux",
    install: "apt-get install tmux",
  },
} as const;

/** One of {@linkcode PROGRAMS}. */
export type Program = keyof typeof PROGRAMS;

/** Reads an environment variable; tests of this helper pass their own. */
export type Env = (name: string) => string | undefined;

const processEnv: Env = (name) => Deno.env.get(name);

/**
 * Whether a missing program fails the tests that need it instead of ignoring them.
 *
 * @example
 * ```ts
 * externalRequired((k) => ({ AUDITPIPE_REQUIRE_EXTERNAL: "1" })[k]); // true
 * ```
 */
export function externalRequired(env: Env = processEnv): boolean {
  return env("AUDITPIPE_REQUIRE_EXTERNAL") === "1";
}

function executable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

/**
 * Whether `program` can be started: its command is a path to an executable file, or a name
 * found in one of PATH's folders.
 *
 * @example
 * ```ts
 * if (hasProgram("openssl")) console.log("TLS tests will run");
 * ```
 */
export function hasProgram(program: Program, env: Env = processEnv): boolean {
  const command = PROGRAMS[program].command(env);
  if (command.includes("/")) return executable(command);
  return (env("PATH") ?? "").split(":").some((dir) =>
    dir !== "" && executable(`${dir}/${command}`)
  );
}

/**
 * Options for `Deno.test(options, fn)` of a test that runs `programs`: just `name` when all
 * are on PATH; otherwise the name ends in the reason (`nats: ... (nats-server not installed)`)
 * and the test is ignored, unless `AUDITPIPE_REQUIRE_EXTERNAL=1`, which runs it so that it
 * fails ({@linkcode requireProgram} in the helpers says what to install).
 *
 * @example
 * ```ts
 * Deno.test(needs("nats-server", "nats: a sink publishes"), async () => {
 *   const srv = await startNatsServer();
 *   await srv.stop();
 * });
 * ```
 */
export function needs(
  programs: Program | readonly Program[],
  name: string,
  env: Env = processEnv,
): { name: string; ignore: boolean } {
  const list: readonly Program[] = typeof programs === "string" ? [programs] : programs;
  const missing = list.filter((p) => !hasProgram(p, env));
  if (missing.length === 0) return { name, ignore: false };
  return {
    name: `${name} (${missing.join(" and ")} not installed)`,
    ignore: !externalRequired(env),
  };
}

/**
 * Throws, saying how to install it, unless `program` is on PATH: helpers that start one call
 * this first so that a test required to run fails with the reason, not a spawn error.
 *
 * @example
 * ```ts
 * requireProgram("openssl");
 * ```
 */
export function requireProgram(program: Program, env: Env = processEnv): void {
  if (hasProgram(program, env)) return;
  throw new Error(
    `${program} not installed (not on PATH as "${PROGRAMS[program].command(env)}")${
      externalRequired(env) ? ", and AUDITPIPE_REQUIRE_EXTERNAL=1 requires it" : ""
    }: ${PROGRAMS[program].install}`,
  );
}
