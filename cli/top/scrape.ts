/**
 * Reading a daemon's `/metrics`: the only thing `auditpipe top` asks of it.
 *
 * @module
 */
import { errorMessage, errorText } from "../../pipeline/core/errors.ts";
import { parsePrometheusText } from "./prometheus.ts";
import type { Scrape } from "./rates.ts";

/**
 * The metrics URL for what the user gave: `host:port`, a base URL (`/metrics` is added when
 * the path is empty or `/`), or the full URL; throws on what cannot be a URL.
 *
 * @example
 * ```ts
 * metricsUrl("127.0.0.1:9090");         // "http://127.0.0.1:9090/metrics"
 * metricsUrl("https://node1:9090/metrics"); // unchanged
 * ```
 */
export function metricsUrl(given: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`not a URL: "${given}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`not an http(s) URL: "${given}"`);
  }
  if (url.pathname === "" || url.pathname === "/") url.pathname = "/metrics";
  return url.href;
}

/**
 * GETs `url` and parses it; throws an error whose message names the URL and why (refused,
 * timed out, an HTTP status, not Prometheus text).
 *
 * @example
 * ```ts
 * const s = await scrape("http://127.0.0.1:9090/metrics", 5000);
 * ```
 */
export async function scrape(url: string, timeoutMs: number): Promise<Scrape> {
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    text = await res.text();
  } catch (err) {
    const e = err as Error;
    const why = e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : reason(e);
    throw new Error(`${url}: ${why}`);
  }
  const at = performance.now();
  try {
    return { at, metrics: parsePrometheusText(text) };
  } catch (err) {
    throw new Error(`${url}: not Prometheus metrics: ${errorMessage(err)}`);
  }
}

/** fetch's error without the parts that repeat the URL ("error sending request for url (…)"). */
function reason(e: Error): string {
  return errorText(e)
    .replace(/^fetch failed: /i, "")
    .replace(/error sending request for url \([^)]*\): /, "")
    .replace(/client error \(\w+\): /, "");
}
