import assert from "node:assert/strict";
import { goQuote, isGoPrint, legacyLine, rfc3339Nano } from "../backends/legacy.ts";
import type { Event } from "../pipeline/core/event.ts";
import { auditLogLines, ruleFixtureEvents } from "./data/corpus.ts";
import { legacyLog } from "./data/samples.ts";
import { testEvent } from "./helpers/events.ts";

/** The example event of spec sec. 9. */
const SPEC_EVENT = JSON.parse(
  `{"level":"Metadata","auditID":"6e4bd9a2-2c3f-4b8e-9d61-0f7a5c3e1b24","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/configmaps?limit=500","verb":"list","user":{"username":"system:serviceaccount:kube-system:ctrl","groups":["system:serviceaccounts","system:authenticated"]},"impersonatedUser":{"username":"alice","groups":["dev"]},"sourceIPs":["10.0.0.5","192.168.1.1"],"userAgent":"kubectl/v1.30.0 (linux/amd64) kubernetes/7c1b0a2","objectRef":{"resource":"configmaps","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2024-03-01T12:34:56.789000Z","stageTimestamp":"2024-03-01T12:34:56.801234Z"}`,
) as Event;

function event(extra: Partial<Event>): Event {
  return testEvent("a", { requestURI: "/", user: {}, ...extra });
}

/** The part of a legacy line for one key, e.g. `groups="<none>"`. */
function field(line: string, key: string): string {
  const m = new RegExp(` ${key}=("(?:[^"\\\\]|\\\\.)*")`).exec(line);
  assert.ok(m, `no ${key} in ${line}`);
  return m[1];
}

Deno.test("legacy line of the spec example event is byte-exact", () => {
  assert.equal(
    legacyLine(SPEC_EVENT),
    String
      .raw`2024-03-01T12:34:56.789Z AUDIT: id="6e4bd9a2-2c3f-4b8e-9d61-0f7a5c3e1b24" stage="ResponseComplete" ip="10.0.0.5" method="list" user="system:serviceaccount:kube-system:ctrl" groups="\"system:serviceaccounts\",\"system:authenticated\"" as="alice" asgroups="\"dev\"" user-agent="kubectl/v1.30.0 (linux/amd64) kubernetes/7c1b0a2" namespace="kube-system" uri="/api/v1/namespaces/kube-system/configmaps?limit=500" response="200"`,
  );
});

Deno.test("legacy line of an event with only an auditID prints every placeholder", () => {
  assert.equal(
    legacyLine({ auditID: "X" } as Event),
    `0001-01-01T00:00:00Z AUDIT: id="X" stage="" ip="<unknown>" method="" user="<none>" groups="<none>" as="<self>" asgroups="<lookup>" user-agent="" namespace="<none>" uri="" response="<deferred>"`,
  );
});

Deno.test("legacy line has no trailing newline", () => {
  assert.ok(!legacyLine(SPEC_EVENT).endsWith("\n"));
});

Deno.test("groups are <none> without a username even when groups are set", () => {
  const line = legacyLine(event({ user: { groups: ["system:unauthenticated"] } }));
  assert.equal(field(line, "user"), `"<none>"`);
  assert.equal(field(line, "groups"), `"<none>"`);
});

Deno.test("groups are <none> for a username with no groups", () => {
  const line = legacyLine(event({ user: { username: "bob", groups: [] } }));
  assert.equal(field(line, "user"), `"bob"`);
  assert.equal(field(line, "groups"), `"<none>"`);
});

Deno.test("groups are quoted twice, so quotes inside a group are escaped twice", () => {
  const line = legacyLine(event({ user: { username: "bob", groups: ['a"b', "c\\d"] } }));
  assert.equal(field(line, "groups"), String.raw`"\"a\\\"b\",\"c\\\\d\""`);
});

Deno.test("impersonation without groups keeps <lookup>; an empty group list prints empty", () => {
  const noGroups = legacyLine(event({ impersonatedUser: { username: "alice" } }));
  assert.equal(field(noGroups, "as"), `"alice"`);
  assert.equal(field(noGroups, "asgroups"), `"<lookup>"`);
  const emptyGroups = legacyLine(event({ impersonatedUser: { groups: [] } }));
  assert.equal(field(emptyGroups, "as"), `""`);
  assert.equal(field(emptyGroups, "asgroups"), `""`);
  const nullImp = legacyLine(event({ impersonatedUser: null as unknown as undefined }));
  assert.equal(field(nullImp, "as"), `"<self>"`);
});

Deno.test("namespace is <none> when empty and response is the code or 0", () => {
  const line = legacyLine(
    event({ objectRef: { resource: "nodes", namespace: "" }, responseStatus: { status: "x" } }),
  );
  assert.equal(field(line, "namespace"), `"<none>"`);
  assert.ok(line.endsWith(` response="0"`));
  assert.ok(legacyLine(event({ responseStatus: { code: 404 } })).endsWith(` response="404"`));
});

Deno.test("ip is the first source IP", () => {
  const line = legacyLine(event({ sourceIPs: ["::1", "10.0.0.1"] }));
  assert.equal(field(line, "ip"), `"::1"`);
  assert.equal(field(legacyLine(event({ sourceIPs: [] })), "ip"), `"<unknown>"`);
});

Deno.test("control characters in fields are escaped and never break the line", () => {
  const line = legacyLine(event({ userAgent: 'evil\n2024 AUDIT: id="x"\r\t\x00\x1b\x7f' }));
  assert.equal(field(line, "user-agent"), String.raw`"evil\n2024 AUDIT: id=\"x\"\r\t\x00\x1b\x7f"`);
  assert.ok(!line.includes("\n"));
});

Deno.test("goQuote escapes as Go's %q: quotes, backslashes and the named escapes", () => {
  assert.equal(goQuote(""), `""`);
  assert.equal(goQuote(`a"b\\c`), String.raw`"a\"b\\c"`);
  assert.equal(
    goQuote("\x07\x08\x0c\n\r\t\x0b"),
    String.raw`"\a\b\f\n\r\t\v"`,
  );
  assert.equal(goQuote("\x00\x01\x1f\x7f"), String.raw`"\x00\x01\x1f\x7f"`);
  assert.equal(goQuote("'`$ ~"), `"'\`$ ~"`);
});

Deno.test("goQuote keeps printable non-ASCII and emoji", () => {
  assert.equal(goQuote("café ünïcødé"), `"café ünïcødé"`);
  assert.equal(goQuote("日本語 кириллица עברית"), `"日本語 кириллица עברית"`);
  assert.equal(goQuote("😀🎉"), `"😀🎉"`);
  // Skin tone modifier (Sk) and combining acute (Mn) are printable.
  assert.equal(goQuote("👍🏽 e\u0301"), `"👍🏽 e\u0301"`);
});

Deno.test("goQuote escapes non-printable runes as \\u or \\U with lowercase hex", () => {
  assert.equal(goQuote("\u0085"), String.raw`"\u0085"`); // C1 control
  assert.equal(goQuote("a\u00a0b"), String.raw`"a\u00a0b"`); // no-break space
  assert.equal(goQuote("soft\u00adhyphen"), String.raw`"soft\u00adhyphen"`);
  assert.equal(
    goQuote("\u200b\u200d\u2028\u2029\ufeff"),
    String.raw`"\u200b\u200d\u2028\u2029\ufeff"`,
  );
  assert.equal(goQuote("\u3000"), String.raw`"\u3000"`); // ideographic space (Zs)
  assert.equal(goQuote("\ue000"), String.raw`"\ue000"`); // private use
  assert.equal(goQuote("\u0378"), String.raw`"\u0378"`); // unassigned
  assert.equal(goQuote("\u{e0001}"), String.raw`"\U000e0001"`); // language tag (Cf)
  assert.equal(goQuote("\u{10ffff}"), String.raw`"\U0010ffff"`);
  // A ZWJ emoji sequence: the emoji stay, the joiner is escaped.
  assert.equal(goQuote("👨\u200d👩"), String.raw`"👨\u200d👩"`);
});

Deno.test("goQuote prints a lone surrogate as U+FFFD, as Go's JSON decoder leaves it", () => {
  assert.equal(goQuote("a\ud800b"), `"a\ufffdb"`);
  assert.equal(goQuote("\ufffd"), `"\ufffd"`);
});

Deno.test("goQuote of bytes escapes each byte of invalid UTF-8 as \\x", () => {
  const q = (...b: number[]) => goQuote(new Uint8Array(b));
  assert.equal(q(0x61, 0xff, 0x62), String.raw`"a\xffb"`);
  assert.equal(q(0xc0, 0x80), String.raw`"\xc0\x80"`); // overlong NUL
  assert.equal(q(0xe0, 0x80, 0x80), String.raw`"\xe0\x80\x80"`); // overlong
  assert.equal(q(0xed, 0xa0, 0x80), String.raw`"\xed\xa0\x80"`); // UTF-8 surrogate
  assert.equal(q(0xf4, 0x90, 0x80, 0x80), String.raw`"\xf4\x90\x80\x80"`); // > U+10FFFF
  assert.equal(q(0xe2, 0x82), String.raw`"\xe2\x82"`); // truncated
  assert.equal(q(0xe2, 0x82, 0x41), String.raw`"\xe2\x82A"`);
  assert.equal(q(0x80), String.raw`"\x80"`); // lone continuation byte
  assert.equal(q(0xef, 0xbf, 0xbd), `"\ufffd"`); // a real U+FFFD is printable
});

Deno.test("goQuote of valid UTF-8 bytes equals goQuote of the string", () => {
  const samples = [
    "plain",
    `q"\\`,
    "\x00\n\x7f",
    "café\u00a0",
    "😀\u200d👩\u{e0001}",
    "日本",
    "\u{10ffff}",
  ];
  for (const s of samples) assert.equal(goQuote(new TextEncoder().encode(s)), goQuote(s), s);
});

Deno.test("isGoPrint follows Go's Latin-1 fast path", () => {
  assert.equal(isGoPrint(0x20), true);
  assert.equal(isGoPrint(0x7e), true);
  assert.equal(isGoPrint(0x7f), false);
  assert.equal(isGoPrint(0xa0), false);
  assert.equal(isGoPrint(0xa1), true);
  assert.equal(isGoPrint(0xad), false);
  assert.equal(isGoPrint(0xff), true);
});

Deno.test("timestamps print as RFC3339Nano without trailing zeros", () => {
  assert.equal(rfc3339Nano("2024-03-01T12:34:56.789000Z"), "2024-03-01T12:34:56.789Z");
  assert.equal(rfc3339Nano("2024-03-01T12:34:56.000000Z"), "2024-03-01T12:34:56Z");
  assert.equal(rfc3339Nano("2024-03-01T12:34:56Z"), "2024-03-01T12:34:56Z");
  assert.equal(rfc3339Nano("2024-03-01T12:34:56.100000Z"), "2024-03-01T12:34:56.1Z");
  assert.equal(rfc3339Nano("2024-03-01T12:34:56.123456789Z"), "2024-03-01T12:34:56.123456789Z");
  assert.equal(rfc3339Nano("2024-03-01T12:34:56.1234567891Z"), "2024-03-01T12:34:56.123456789Z");
});

Deno.test("timestamps with an offset are printed in UTC", () => {
  assert.equal(rfc3339Nano("2024-03-01T14:34:56.500+02:00"), "2024-03-01T12:34:56.5Z");
  assert.equal(rfc3339Nano("2024-03-01T00:30:00-05:30"), "2024-03-01T06:00:00Z");
  assert.equal(rfc3339Nano("2024-01-01T01:00:00+02:00"), "2023-12-31T23:00:00Z");
  assert.equal(rfc3339Nano("2024-03-01T12:00:00+00:00"), "2024-03-01T12:00:00Z");
});

Deno.test("null, missing and undecodable timestamps print as Go's zero time", () => {
  for (
    const ts of [null, undefined, "", "yesterday", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z"]
  ) {
    assert.equal(rfc3339Nano(ts), "0001-01-01T00:00:00Z", String(ts));
  }
  assert.equal(rfc3339Nano("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
  assert.equal(rfc3339Nano("0099-05-06T07:08:09Z"), "0099-05-06T07:08:09Z");
});

Deno.test("legacy lines of kube-apiserver, v1beta1 and rule-fixture events are one well-formed line each", () => {
  const text = [
    ...auditLogLines(),
    ...legacyLog().split("\n"),
    ...ruleFixtureEvents().map((e) => JSON.stringify(e)),
  ].join("\n");
  const shape =
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z AUDIT: id="[^"]*" stage="\w+" ip="[^"]*" method="\w*" user="[^"]*" groups="(<none>|(\\"[^"\\]*\\",?)+)" as="[^"]*" asgroups="(<lookup>|(\\"[^"\\]*\\",?)*)" user-agent="(?:[^"\\]|\\.)*" namespace="[^"]*" uri="(?:[^"\\]|\\.)*" response="(\d+|<deferred>)"$/;
  let n = 0;
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    const e = JSON.parse(raw) as Event;
    const line = legacyLine(e);
    assert.match(line, shape);
    assert.ok(line.startsWith(rfc3339Nano(e.requestReceivedTimestamp) + " AUDIT: "));
    n++;
  }
  assert.ok(n > 10);
});

Deno.test("legacy line of the first audit.log event", () => {
  const [first] = auditLogLines(1);
  assert.equal(
    legacyLine(JSON.parse(first)),
    `2023-03-10T22:38:26.382971Z AUDIT: id="4b2cadd1-f965-4072-b8b6-c681f958c2c2" stage="RequestReceived" ip="127.0.0.1" method="get" user="admin" groups="\\"system:masters\\",\\"system:authenticated\\"" as="<self>" asgroups="<lookup>" user-agent="kubectl/v1.25.6 (linux/amd64) kubernetes/ff2c119" namespace="<none>" uri="/api?timeout=32s" response="<deferred>"`,
  );
});
