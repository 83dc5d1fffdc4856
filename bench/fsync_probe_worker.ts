/**
 * The worker of {@linkcode FsyncProbe} (bench/fsync_probe.ts): 16 KiB written and
 * `fdatasync`ed every `intervalMs`, synchronously, cycling over the first 64 MiB of its file;
 * each latency is kept until the next "take".
 *
 * @module
 */
/// <reference lib="deno.worker" />

let latencies: number[] = [];
self.onmessage = (e: MessageEvent<{ path: string; intervalMs: number } | "take">) => {
  if (e.data === "take") {
    self.postMessage(latencies);
    latencies = [];
    return;
  }
  const { path, intervalMs } = e.data;
  const file = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
  const block = new Uint8Array(16 * 1024).fill(0x70);
  let offset = 0;
  const tick = () => {
    file.seekSync(offset, Deno.SeekMode.Start);
    file.writeSync(block);
    offset = (offset + block.length) % (64 * 1024 * 1024);
    const t0 = performance.now();
    file.syncDataSync();
    latencies.push(performance.now() - t0);
    setTimeout(tick, intervalMs);
  };
  tick();
};
