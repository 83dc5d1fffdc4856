/**
 * `auditpipe keygen --out DIR`: an Ed25519 key pair for a log sink's `integrity.signingKey`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { keyFingerprint } from "../backends/integrity/format.ts";

const HELP = `Usage: auditpipe keygen --out DIR [--name NAME]

Writes an Ed25519 key pair for signing log checkpoints (a log sink's integrity.signingKey):
  DIR/NAME.key  the private key (PKCS#8 PEM, mode 0600): keep it on the node, readable by
                the daemon only
  DIR/NAME.pub  the public key (SPKI PEM, mode 0644): give it to whoever runs
                'auditpipe verify --public-key DIR/NAME.pub LOG...'
NAME defaults to auditpipe-signing. Existing files are not overwritten (exit 1).
`;

/**
 * Runs `auditpipe keygen`; returns the exit code (0 written, 1 failed, 2 usage).
 *
 * @example
 * ```ts
 * Deno.exit(await keygenCommand(["--out", "/etc/auditpipe/keys"]));
 * ```
 */
export async function keygenCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: "string" },
        name: { type: "string", default: "auditpipe-signing" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`auditpipe keygen: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.out) {
    console.error(`auditpipe keygen: --out is required\n\n${HELP}`);
    return 2;
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const priv = join(values.out, `${values.name}.key`);
  const pub = join(values.out, `${values.name}.pub`);
  try {
    await Deno.mkdir(values.out, { recursive: true, mode: 0o700 });
    // createNew: an existing key is never overwritten; the mode is set at creation and again
    // after, since the umask may have narrowed it (never widened: 0600 is what we want).
    await Deno.writeTextFile(
      priv,
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      { createNew: true, mode: 0o600 },
    );
    await Deno.chmod(priv, 0o600);
    await Deno.writeTextFile(
      pub,
      publicKey.export({ type: "spki", format: "pem" }) as string,
      { createNew: true, mode: 0o644 },
    );
    await Deno.chmod(pub, 0o644);
  } catch (e) {
    const why = e instanceof Deno.errors.AlreadyExists ? "file exists" : (e as Error).message;
    console.error(`auditpipe keygen: ${why} (in ${values.out})`);
    return 1;
  }
  console.log(
    `private key: ${priv}\npublic key:  ${pub}\nfingerprint: ${keyFingerprint(publicKey)}`,
  );
  return 0;
}
