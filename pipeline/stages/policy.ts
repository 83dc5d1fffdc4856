/**
 * The policy stage of a sink branch: evaluates the branch's compiled audit Policy on each
 * event (once per policy per event, cached on the envelope for branches sharing it), drops
 * what the policy drops and lowers levels as kube-apiserver would have.
 *
 * @module
 */
import type { Chunk, Envelope } from "../core/envelope.ts";
import type { Event, Level } from "../core/event.ts";
import type { SinkStats } from "../core/stats.ts";
import { ledgered } from "../core/ledger.ts";
import { hasValue } from "../core/decode_fast.ts";
import { spliceLowered } from "../core/splice.ts";
import { applyPolicy, type CompiledPolicy, evaluate, type PolicyResult } from "../../policy/mod.ts";

/** What the policy stage needs besides the policy. */
export interface PolicyStageDeps {
  readonly stats: SinkStats;
  /** Policy evaluations by level, counted once per policy and event. */
  readonly levels: Record<Level, number>;
}

/**
 * The result of `policy` for an envelope's event, evaluated once per envelope and policy
 * however many branches share it; results are kept on the envelope.
 *
 * @example
 * ```ts
 * const result = cachedEvaluate(policy, envelope, stats.levels);
 * ```
 */
export function cachedEvaluate(
  policy: CompiledPolicy,
  env: Envelope,
  levels: Record<Level, number>,
): PolicyResult {
  if (env.policyId === policy.id) return env.policyResult as PolicyResult;
  const cached = env.policyResults?.get(policy.id);
  if (cached !== undefined) return cached as PolicyResult;
  const result = evaluate(policy, env.event);
  if (env.policyId === undefined) {
    env.policyId = policy.id;
    env.policyResult = result;
  } else {
    (env.policyResults ??= new Map()).set(policy.id, result);
  }
  levels[result.level]++;
  return result;
}

/**
 * The envelope of an event the policy changed: with bytes cut from the original ones (level
 * replaced, dropped bodies cut out) when the policy only lowered it and the envelope has
 * bytes in kube-apiserver's shape, so the kept body is neither parsed nor serialized again;
 * else the event alone, serialized by the sink.
 *
 * @example
 * ```ts
 * out.push(lowered(env, applyPolicy(result, env.event) as Event, result));
 * ```
 */
export function lowered(env: Envelope, applied: Event, result: PolicyResult): Envelope {
  const src = env.item ?? env.raw;
  if (src === undefined) return { event: applied };
  const event = env.event;
  const dropRequest = hasValue(event, "requestObject") && !hasValue(applied, "requestObject");
  const dropResponse = hasValue(event, "responseObject") && !hasValue(applied, "responseObject");
  // Stripped managedFields change a kept body: that one must be serialized.
  if (
    result.omitManagedFields &&
    ((!dropRequest && applied.requestObject !== event.requestObject) ||
      (!dropResponse && applied.responseObject !== event.responseObject))
  ) return { event: applied };
  const bytes = spliceLowered(src, src !== env.item, event, {
    from: event.level,
    to: applied.level,
    dropRequest,
    dropResponse,
  });
  if (bytes === null) return { event: applied };
  return src === env.item ? { event: applied, item: bytes } : { event: applied, raw: bytes };
}

/**
 * A TransformStream applying `policy` to every chunk. A chunk left empty ends its hold on
 * the ack; a chunk nothing changed in is passed on as it is.
 *
 * @example
 * ```ts
 * branch = chunks.pipeThrough(policyStage(compiled, { stats, levels }));
 * ```
 */
export function policyStage(
  policy: CompiledPolicy,
  deps: PolicyStageDeps,
): TransformStream<Chunk, Chunk> {
  return new TransformStream(ledgered(deps.stats.ledger, {
    transform(chunk: Chunk, controller: TransformStreamDefaultController<Chunk>) {
      let out: Envelope[] | null = null;
      let policyDrops = 0;
      let stageDrops = 0;
      const items = chunk.items;
      for (let i = 0; i < items.length; i++) {
        const env = items[i];
        const result = cachedEvaluate(policy, env, deps.levels);
        const applied = applyPolicy(result, env.event);
        if (applied === env.event) {
          if (out) out.push(env);
          continue;
        }
        out ??= items.slice(0, i);
        if (applied === "policy") policyDrops++;
        else if (applied === "omitted_stage") stageDrops++;
        else out.push(lowered(env, applied, result));
      }
      if (policyDrops) deps.stats.drop("policy", policyDrops);
      if (stageDrops) deps.stats.drop("omitted_stage", stageDrops);
      if (out === null) controller.enqueue(chunk);
      else if (out.length) controller.enqueue({ items: out, ack: chunk.ack });
      else chunk.ack.release();
    },
  }));
}
