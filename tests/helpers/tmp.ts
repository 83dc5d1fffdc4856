/** Temporary folders for tests that write real files, and what goes in them. */
import { generateKeyPairSync } from "node:crypto";

/**
 * Runs `fn` with a new temporary folder named after `prefix`, removed afterwards whatever
 * happens.
 *
 * @example
 * ```ts
 * await withTempDir("auditpipe-rotate-", async (dir) => { await Deno.writeTextFile(`${dir}/a`, ""); });
 * ```
 */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The names in `dir`, sorted.
 *
 * @example
 * ```ts
 * await dirNames(dir); // ["audit-2024-03-01T12-34-56.789.log", "audit.log"]
 * ```
 */
export async function dirNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/**
 * Writes a new Ed25519 key pair to `dir`/signing.key (0600, what a log sink's `integrity`
 * takes) and `dir`/signing.pub (what `auditpipe verify` takes).
 *
 * @example
 * ```ts
 * await writeSigningKeys(dir); // then integrity: {signingKey: signing.key}
 * ```
 */
export async function writeSigningKeys(dir: string): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  await Deno.writeTextFile(
    `${dir}/signing.key`,
    privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    { mode: 0o600 },
  );
  await Deno.writeTextFile(
    `${dir}/signing.pub`,
    publicKey.export({ type: "spki", format: "pem" }) as string,
  );
}
