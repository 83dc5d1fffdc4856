import { assert, assertEquals } from "./helpers/assert.ts";
import { postEvents, realEvents, ROOT, startDaemon } from "./helpers/daemon.ts";

const config = (dir: string) => `
sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
    path: /audit
sinks:
  - type: stdout
    name: console
  - type: log
    name: local
    path: ${dir}/out/audit.log
server:
  listen: 127.0.0.1:0
`;

function withType(e: Record<string, unknown>) {
  const { kind: _k, apiVersion: _v, ...rest } = e;
  return { kind: "Event", apiVersion: "audit.k8s.io/v1", ...rest };
}

async function smoke(entry?: string) {
  const d = await startDaemon(config, { entry });
  const port = await d.webhookPort();
  const events = await realEvents(200);
  const res = await postEvents(port, events);
  assertEquals(res.status, 200);
  assertEquals(await res.json(), { accepted: events.length, rejected: 0 });
  const { code, stdout } = await d.stop("SIGTERM");
  assertEquals(code, 0);
  const expected = events.map(withType);
  const logged = (await Deno.readTextFile(`${d.dir}/out/audit.log`)).trimEnd().split("\n").map((
    l,
  ) => JSON.parse(l));
  assertEquals(logged, expected);
  const printed = stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(printed, expected);
  assert(d.logs.some((r) => r.msg === "pipeline stopped"));
  await Deno.remove(d.dir, { recursive: true });
}

Deno.test("daemon delivers a posted EventList of real events to the log file and stdout, and SIGTERM exits 0", async () => {
  await smoke();
});

Deno.test("the single-file bundle (deno task bundle) passes the same end-to-end smoke test", async () => {
  const dir = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform=deno", "-o", `${dir}/auditpipe.js`, `${ROOT}main.ts`],
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  await smoke(`${dir}/auditpipe.js`);
  await Deno.remove(dir, { recursive: true });
});
