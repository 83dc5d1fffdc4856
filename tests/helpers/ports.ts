/**
 * Ports for tests that need a peer to be down first and come up later on the same address.
 *
 * @module
 */

/**
 * A port on 127.0.0.1 that nothing listens on (taken from the kernel's ephemeral range and let
 * go at once): connections to it are refused until a test starts a server there.
 *
 * @example
 * ```ts
 * const port = freePort();
 * // ... the daemon's sink fails to connect ...
 * const recv = await startReceiver(port);
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
