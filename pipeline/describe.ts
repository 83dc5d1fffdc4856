/**
 * One-line descriptions of configured sources and sinks, in the style of kube-apiserver's
 * `truncate<buffered<webhook>>`: the startup log, `--check` and reload logs show them, e.g.
 * `webhook(https://0.0.0.0:8443/audit, client certs, bearer token) → annotate(cluster=prod)`.
 * Pure functions of the resolved config, so `--check` can print them without opening anything.
 *
 * @module
 */
import type { ResolvedSink, ResolvedSource } from "./config/files.ts";
import { formatDuration } from "./core/duration.ts";

/**
 * Bytes as the largest binary unit that divides them exactly.
 *
 * @example
 * ```ts
 * formatBytes(102400); // "100KiB"
 * formatBytes(10485760); // "10MiB"
 * formatBytes(1000); // "1000B"
 * ```
 */
export function formatBytes(n: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return `${n}B`;
}

/**
 * `annotate(k=v, ...)`, or nothing without annotations.
 *
 * @example
 * ```ts
 * annotateStep({ cluster: "prod" }); // ["annotate(cluster=prod)"]
 * ```
 */
export function annotateStep(annotations: Readonly<Record<string, string>> | undefined): string[] {
  const pairs = Object.entries(annotations ?? {});
  return pairs.length ? [`annotate(${pairs.map(([k, v]) => `${k}=${v}`).join(", ")})`] : [];
}

/**
 * A source and what it does to events before the fan-out: `name: kind(details) → ...`.
 *
 * @example
 * ```ts
 * describeSource(resources.sources[0]);
 * // "apiserver: webhook(http://127.0.0.1:8080/audit, bearer token) → annotate(cluster=prod)"
 * ```
 */
export function describeSource(resolved: ResolvedSource): string {
  const cfg = resolved.config;
  let what: string;
  switch (cfg.type) {
    case "webhook": {
      const scheme = resolved.tls ? "https" : "http";
      what = `webhook(${
        [
          `${scheme}://${cfg.listen}${cfg.path}`,
          resolved.tls?.clientCA ? "client certs" : null,
          resolved.token !== undefined ? "bearer token" : null,
          `${cfg.maxInFlight} in flight`,
          cfg.deadLetterFile ? `dead letters ${cfg.deadLetterFile}` : null,
        ].filter(Boolean).join(", ")
      })`;
      break;
    }
    case "tail":
      what = `tail(${
        [
          cfg.path,
          `from ${cfg.startAt}`,
          cfg.checkpointFile ? `checkpoint ${cfg.checkpointFile}` : null,
        ].filter(Boolean).join(", ")
      })`;
      break;
    case "stdin":
      what = "stdin";
      break;
    case "nats":
      what = `nats(${
        [
          cfg.servers.join(" "),
          `stream ${cfg.stream}`,
          `subject ${cfg.subject}`,
          `consumer ${cfg.consumer}`,
          ...natsSecurity(resolved),
        ].join(", ")
      })`;
      break;
  }
  return `${cfg.name}: ${[what, ...annotateStep(cfg.annotations)].join(" → ")}`;
}

function natsSecurity(r: ResolvedSource | ResolvedSink): string[] {
  const out: string[] = [];
  if (r.nats?.tls) out.push(r.nats.tls.cert ? "mutual tls" : "tls");
  if (r.nats?.creds) out.push("creds");
  else if (r.nats?.user) out.push(`user ${r.nats.user}`);
  else if (r.nats?.token) out.push("token");
  return out;
}

/**
 * The sink at the end of a branch: `kind(details)`.
 *
 * @example
 * ```ts
 * describeSink(resources.sinks[0]); // "log(/var/log/kubernetes/audit.log, json, rotate 100MB×10)"
 * ```
 */
export function describeSink(resolved: ResolvedSink): string {
  const cfg = resolved.config;
  switch (cfg.type) {
    case "stdout":
      return `stdout(${cfg.format})`;
    case "log": {
      const r = cfg.rotate;
      const rotate = cfg.path === "-" || r.maxSize === 0
        ? "no rotate"
        : `rotate ${r.maxSize}MB×${r.maxBackup}${r.compress ? " gzip" : ""}`;
      const fsync = cfg.fsync === "batch" ? null : `fsync ${cfg.fsync}`;
      return `log(${[cfg.path, cfg.format, rotate, fsync].filter(Boolean).join(", ")})`;
    }
    case "webhook":
      return `webhook(${
        [
          resolved.target?.url.href ?? cfg.kubeconfig,
          cfg.compress === "gzip" ? "gzip" : null,
          cfg.maxInFlight > 1 ? `${cfg.maxInFlight} in flight` : null,
          `timeout ${formatDuration(cfg.timeout)}`,
          `${cfg.retry.maxAttempts} attempts`,
        ].filter(Boolean).join(", ")
      })`;
    case "nats":
      return `nats(${
        [
          cfg.servers.join(" "),
          `subject ${cfg.subject}`,
          cfg.stream ? `stream ${cfg.stream}` : null,
          ...natsSecurity(resolved),
        ].filter(Boolean).join(", ")
      })`;
  }
}
