/**
 * Enrichment: adds fixed annotations (cluster name, node name) to every event. As in
 * kube-apiserver, the first writer wins: a key the event already has keeps its value.
 *
 * @module
 */
import type { Chunk, Envelope } from "../core/envelope.ts";
import type { Event } from "../core/event.ts";
import { type Ledger, ledgered, NO_LEDGER } from "../core/ledger.ts";

/**
 * The event with `extra` annotations added where it lacks them; the same object when it
 * already has every key. Keys are kept sorted, as Go writes maps.
 *
 * @example
 * ```ts
 * annotateEvent(event, { "example.com/cluster": "prod" });
 * ```
 */
export function annotateEvent(event: Event, extra: Readonly<Record<string, string>>): Event {
  const have = event.annotations;
  let missing = false;
  for (const k in extra) {
    if (have === undefined || !(k in have)) {
      missing = true;
      break;
    }
  }
  if (!missing) return event;
  const merged: Record<string, string> = { ...extra, ...have };
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(merged).sort()) sorted[k] = merged[k];
  return { ...event, annotations: sorted };
}

/**
 * A TransformStream adding `extra` to every event of every chunk.
 *
 * @example
 * ```ts
 * chunks.pipeThrough(annotateStage({ "example.com/node": "cp-1" }));
 * ```
 */
export function annotateStage(
  extra: Readonly<Record<string, string>>,
  ledger: Ledger = NO_LEDGER,
): TransformStream<Chunk, Chunk> {
  return new TransformStream(ledgered(ledger, {
    transform(chunk: Chunk, controller: TransformStreamDefaultController<Chunk>) {
      controller.enqueue(annotateChunk(chunk, extra));
    },
  }));
}

/**
 * A chunk with `extra` added to its events; the same chunk when nothing changed.
 *
 * @example
 * ```ts
 * const out = annotateChunk(chunk, { "example.com/cluster": "prod" });
 * ```
 */
export function annotateChunk(chunk: Chunk, extra: Readonly<Record<string, string>>): Chunk {
  let out: Envelope[] | null = null;
  chunk.items.forEach((env, i) => {
    const e = annotateEvent(env.event, extra);
    if (e === env.event) out?.push(env);
    else (out ??= chunk.items.slice(0, i)).push({ event: e });
  });
  return out === null ? chunk : { items: out, ack: chunk.ack };
}
