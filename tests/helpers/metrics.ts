/**
 * Reading the daemon's Prometheus metrics in tests.
 *
 * @module
 */

/**
 * Parses Prometheus text into `name{labels}` → value.
 *
 * @example
 * ```ts
 * const m = parseMetrics(await registry.metrics());
 * m.get('auditpipe_sink_events_total{sink="siem"}');
 * ```
 */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/**
 * GETs /metrics from the ops server on `opsPort` and parses it.
 *
 * @example
 * ```ts
 * const m = await scrapeMetrics(await d.opsPort());
 * ```
 */
export async function scrapeMetrics(opsPort: number): Promise<Map<string, number>> {
  return parseMetrics(await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text());
}
