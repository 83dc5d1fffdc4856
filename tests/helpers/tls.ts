/**
 * Test helper: a throwaway PKI made with `openssl` in a temp dir — a CA, a server certificate
 * for 127.0.0.1/localhost, a client certificate, and a second CA that signed neither (for
 * "wrong CA" tests). Keys are EC P-256 so generation takes milliseconds.
 *
 * @module
 */
import { requireProgram } from "./external.ts";

/** PEM texts and file paths of one generated PKI. */
export interface TestPki {
  /** The temp dir holding every file below; remove it with {@linkcode TestPki.cleanup}. */
  dir: string;
  caCert: string;
  caCertFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientCertFile: string;
  clientKey: string;
  clientKeyFile: string;
  /** The client certificate's subject CN, for receivers that check who connected. */
  clientCN: string;
  /** A CA that signed nothing here. */
  otherCaCert: string;
  otherCaCertFile: string;
  /** Removes the temp dir. */
  cleanup(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** `openssl req` making a new P-256 key, `<name>.key`, for the subject CN=`name`. */
function newKeyRequest(name: string): string[] {
  return [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-subj",
    `/CN=${name}`,
  ];
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    ...newKeyRequest(name),
    "-x509",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function makeLeaf(dir: string, name: string, ext: string[]): Promise<void> {
  await openssl(dir, [...newKeyRequest(name), "-out", `${name}.csr`]);
  await Deno.writeTextFile(`${dir}/${name}.ext`, ext.join("\n") + "\n");
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
}

/**
 * Generates a fresh PKI in a new temp dir.
 *
 * @example
 * ```ts
 * const pki = await createTestPki();
 * try {
 *   // serve with pki.serverCert/serverKey, trust pki.caCert
 * } finally {
 *   await pki.cleanup();
 * }
 * ```
 */
export async function createTestPki(): Promise<TestPki> {
  requireProgram("openssl");
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-pki-" });
  try {
    await makeCa(dir, "ca");
    await makeCa(dir, "other-ca");
    await makeLeaf(dir, "server", [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
    await makeLeaf(dir, "auditpipe-client", [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=clientAuth",
    ]);
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caCert: await read("ca.crt"),
    caCertFile: `${dir}/ca.crt`,
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("auditpipe-client.crt"),
    clientCertFile: `${dir}/auditpipe-client.crt`,
    clientKey: await read("auditpipe-client.key"),
    clientKeyFile: `${dir}/auditpipe-client.key`,
    clientCN: "auditpipe-client",
    otherCaCert: await read("other-ca.crt"),
    otherCaCertFile: `${dir}/other-ca.crt`,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}
