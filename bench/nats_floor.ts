/**
 * The floors of the NATS benchmarks, with the same `@nats-io` client the daemon uses:
 *
 * - `consume URL STREAM CONSUMER N`: uses the durable pull consumer CONSUMER (created as the
 *   daemon's source would, `natsConsumerConfig`, when missing), fetches batches of 256 (the
 *   source's batch) and acks each batch's messages once the fetch has brought them all, as
 *   the source acks a chunk, until N have come; then flushes, so the last acks have left.
 *   `consume-each` acks each message as it arrives instead (the client's examples do so),
 *   which costs about three times the CPU: each ack then leaves in a socket write of its own.
 *   With OUT it also does what a collector must: `JSON.parse`s each message and writes the
 *   batch's bytes to OUT (one write per fetch) before acking it.
 * - `publish URL STREAM SUBJECT FILE`: creates the stream, reads the JSON-lines file, parses
 *   each line (a publisher must, to name the message id) and publishes its bytes with
 *   `Nats-Msg-Id` `<auditID>/<stage>`, at most 256 awaiting their PubAck (the sink's bound),
 *   until every one is acknowledged.
 *
 * Both connect as the daemon does (`noAsyncTraces`: no Errors built ahead for each request).
 *
 * Prints `{"events","bytes","seconds","cpuSeconds"}`; timed from connecting to the end, so the
 * process start is not counted (nor is it for the daemon). `cpuSeconds` is this process's
 * user + system time over the same span.
 *
 * @module
 */
import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { natsConsumerConfig } from "../pipeline/ingest/nats_consumer.ts";
import { NATS_STREAM_DEFAULTS, natsStreamConfig } from "../pipeline/core/nats_connect.ts";

const BATCH = 256;

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function consume(
  url: string,
  stream: string,
  name: string,
  want: number,
  outPath?: string,
  ackEach = false,
) {
  const t0 = performance.now();
  const cpu0 = cpuSeconds();
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  // The bench creates the consumer beforehand (to start it at a sequence); else as the source would.
  const exists = await jsm.consumers.info(stream, name).then(() => true, () => false);
  if (!exists) {
    const subject = (await jsm.streams.info(stream)).config.subjects![0];
    await jsm.consumers.add(stream, natsConsumerConfig(name, subject));
  }
  const consumer = await jetstream(nc).consumers.get(stream, name);
  const out = outPath === undefined
    ? null
    : await Deno.open(outPath, { write: true, create: true, truncate: true });
  const decoder = new TextDecoder();
  const NL = new Uint8Array([10]);
  let events = 0;
  let bytes = 0;
  let parsed = 0;
  while (events < want) {
    const iter = await consumer.fetch({
      max_messages: Math.min(BATCH, want - events),
      expires: 1000,
    });
    const msgs = [];
    for await (const m of iter) {
      bytes += m.data.length;
      events++;
      if (out === null && ackEach) m.ack();
      else msgs.push(m);
    }
    if (out === null) {
      for (const m of msgs) m.ack();
      continue;
    }
    if (msgs.length === 0) continue;
    // As a collector must: parse each, write the batch (one write), then ack it.
    const parts: Uint8Array[] = [];
    for (const m of msgs) {
      if (JSON.parse(decoder.decode(m.data)).kind === "Event") parsed++;
      parts.push(m.data, NL);
    }
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    for (let w = 0; w < joined.length;) w += await out.write(joined.subarray(w));
    for (const m of msgs) m.ack();
  }
  out?.close();
  await nc.flush();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  await nc.close();
  return { events, parsed, bytes, seconds, cpuSeconds: cpu };
}

async function publish(url: string, stream: string, subject: string, file: string) {
  const t0 = performance.now();
  const cpu0 = cpuSeconds();
  const nc = await connect({ servers: url, noAsyncTraces: true }); // as connectNats does
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add(natsStreamConfig(stream, subject, NATS_STREAM_DEFAULTS));
  const js = jetstream(nc);
  const data = await Deno.readFile(file);
  const decoder = new TextDecoder();
  // A count and one waiter (Promise.race over 256 in flight took a fifth of this process).
  let active = 0;
  let wake: (() => void) | null = null;
  const settled = () => {
    active--;
    wake?.();
  };
  const room = () => new Promise<void>((r) => wake = r);
  let events = 0;
  let failed = 0;
  let start = 0;
  for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
    const line = data.subarray(start, nl);
    start = nl + 1;
    const doc = JSON.parse(decoder.decode(line));
    active++;
    js.publish(subject, line, { msgID: `${doc.auditID}/${doc.stage}` }).then(settled, () => {
      failed++;
      settled();
    });
    events++;
    while (active >= BATCH) await room();
  }
  while (active > 0) await room();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  await nc.close();
  if (failed > 0) throw new Error(`${failed} publishes failed`);
  return { events, bytes: data.length, seconds, cpuSeconds: cpu };
}

const [mode, ...args] = Deno.args;
if (mode === "consume" || mode === "consume-each") {
  const [url, stream, name, n, out] = args;
  console.log(
    JSON.stringify(await consume(url, stream, name, Number(n), out, mode === "consume-each")),
  );
} else if (mode === "publish") {
  const [url, stream, subject, file] = args;
  console.log(JSON.stringify(await publish(url, stream, subject, file)));
} else {
  throw new Error(
    "usage: nats_floor.ts consume|consume-each URL STREAM CONSUMER N [OUT] | " +
      "publish URL STREAM SUBJECT FILE",
  );
}
