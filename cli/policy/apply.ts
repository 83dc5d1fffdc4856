/**
 * `policy apply`: the events a policy keeps, lowered to their level, as JSON lines.
 *
 * @module
 */
import { encodeEvent, jsonBytes } from "../../pipeline/core/encode.ts";
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { applyPolicy, type CompiledPolicy, evaluate } from "../../policy/mod.ts";
import type { LineWriter } from "./writer.ts";

/**
 * Writes each kept event as a top-level JSON line: an unchanged one as the bytes it came as
 * when it came as a v1 line or EventList item, a changed one serialized as kube-apiserver
 * would write it.
 *
 * @example
 * ```ts
 * await applyEvents(compiled, readEvents(inputs, opts), new LineWriter(io.stdout));
 * ```
 */
export async function applyEvents(
  policy: CompiledPolicy,
  batches: AsyncIterable<readonly Envelope[]>,
  out: LineWriter,
): Promise<void> {
  for await (const batch of batches) {
    for (const envelope of batch) {
      const event = envelope.event;
      const applied = applyPolicy(evaluate(policy, event), event);
      if (applied === event) await out.line(jsonBytes(envelope));
      else if (typeof applied !== "string") await out.line(encodeEvent(applied));
    }
  }
}
