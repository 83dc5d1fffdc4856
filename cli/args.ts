/**
 * Command-line parsing shared by the daemon and its subcommands: unknown options and `--help`
 * are answered the same way everywhere.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** The option values `parseArgs` gives for `options` (no positionals). */
export type ParsedOptions<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>["values"];

/**
 * Prints `message` and the help on stderr; returns the usage exit code, 2.
 *
 * @example
 * ```ts
 * if (!values.config) return usageError("auditpipe", "--config is required", HELP);
 * ```
 */
export function usageError(prog: string, message: string, help: string): number {
  console.error(`${prog}: ${message}\n\n${help}`);
  return 2;
}

/**
 * Parses `args` against `options` (every command has `-h, --help`); returns the values, or
 * the exit code when the command is done: 0 after printing the help, 2 after a usage error.
 *
 * @example
 * ```ts
 * const values = parseCommandLine("auditpipe permissions", HELP, args, {
 *   config: { type: "string", short: "c" },
 * });
 * if (typeof values === "number") return values;
 * ```
 */
export function parseCommandLine<O extends ParseArgsOptionsConfig>(
  prog: string,
  help: string,
  args: string[],
  options: O,
): ParsedOptions<O> | number {
  let values: ParsedOptions<O>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    return usageError(prog, (err as Error).message, help);
  }
  if ((values as { help?: boolean }).help) {
    console.log(help);
    return 0;
  }
  return values;
}
