/**
 * Listen addresses as the config writes them: `host:port`, `[v6]:port` or `:port` (all
 * interfaces).
 *
 * @module
 */

/** A listen address taken apart. */
export interface ListenAddress {
  /** The host without brackets; `0.0.0.0` when the address names none. */
  readonly hostname: string;
  /** The port; 0 asks the system for a free one. */
  readonly port: number;
}

/**
 * Splits a listen address the schema accepted.
 *
 * @example
 * ```ts
 * parseListen("[::1]:8080"); // { hostname: "::1", port: 8080 }
 * parseListen(":9090");      // { hostname: "0.0.0.0", port: 9090 }
 * ```
 */
export function parseListen(listen: string): ListenAddress {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port: Number(listen.slice(i + 1)) };
}

/**
 * `host:port` as Deno's `--allow-net` and URLs write it (IPv6 hosts in brackets).
 *
 * @example
 * ```ts
 * hostPort(parseListen("[::1]:8080")); // "[::1]:8080"
 * ```
 */
export function hostPort(addr: ListenAddress): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `${host}:${addr.port}`;
}
