import assert from "node:assert/strict";
import { hostPort, parseListen } from "../pipeline/core/listen.ts";

Deno.test("listen addresses: host:port, [v6]:port and :port, and back as --allow-net writes them", () => {
  assert.deepEqual(parseListen("127.0.0.1:8080"), { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseListen("[::1]:0"), { hostname: "::1", port: 0 });
  assert.deepEqual(parseListen(":9090"), { hostname: "0.0.0.0", port: 9090 });
  assert.equal(hostPort(parseListen("[::1]:8080")), "[::1]:8080");
  assert.equal(hostPort(parseListen(":9090")), "0.0.0.0:9090");
});
