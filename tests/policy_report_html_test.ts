/**
 * `policy report --html` and what it added to the report: the top users, resources and verbs
 * by bytes written, `--compare` with a second policy, and the self-contained page, which is
 * opened in headless Chromium to check that it shows the `--json` report's numbers, escapes
 * what the log says and requests nothing but itself.
 */
import assert from "node:assert/strict";
import { Tally } from "../cli/policy/report_tally.ts";
import { svgBars } from "../cli/policy/svg_bars.ts";
import { sampleEvents } from "./data/corpus.ts";
import { Headless, type Visit } from "./helpers/chromium.ts";
import { ROOT } from "./helpers/daemon.ts";
import { needs } from "./helpers/external.ts";
import { podEvent, POLICY, policyCases, runPolicy as run } from "./helpers/policy_cli.ts";
import { withTempDir } from "./helpers/tmp.ts";

const events = policyCases();
const lines = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
const size = (e: Record<string, unknown>) => JSON.stringify(e).length + 1;

/** Everything at Metadata: smaller than {@linkcode POLICY}'s RequestResponse for pods. */
const METADATA_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
`;

const files = { "p.yaml": POLICY, "meta.yaml": METADATA_POLICY, "audit.log": lines };

interface Stats {
  events: number;
  kept: number;
  omittedStage: number;
  bytesIn: number;
  bytesOut: number;
}
type Ranked = Stats & { name: string; other?: true };
type Row = Stats & { index: number; level: string; description: string };
type SavedRow = Stats & { savedBytes: number };
interface Counts {
  rules: Row[];
  noMatch: Stats;
  total: Stats;
  neverMatched: number[];
}
interface Doc extends Counts {
  top: { users: Ranked[]; resources: Ranked[]; verbs: Ranked[] };
  compare?: Counts & {
    policy: string;
    perRule: (SavedRow & { index: number })[];
    perRuleNoMatch: SavedRow;
    savedBytes: number;
  };
}

async function reportJson(args: string[], f: Record<string, string> = files): Promise<Doc> {
  const r = await run(["report", "-p", "p.yaml", "--json", ...args, "audit.log"], f);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function add(a: Stats, b: Stats): Stats {
  return {
    events: a.events + b.events,
    kept: a.kept + b.kept,
    omittedStage: a.omittedStage + b.omittedStage,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
  };
}

const ZERO: Stats = { events: 0, kept: 0, omittedStage: 0, bytesIn: 0, bytesOut: 0 };
const sum = (list: readonly Stats[]) => list.map(stats).reduce(add, ZERO);
const stats = (s: Stats): Stats => ({
  events: s.events,
  kept: s.kept,
  omittedStage: s.omittedStage,
  bytesIn: s.bytesIn,
  bytesOut: s.bytesOut,
});

Deno.test("report --json ranks users, resources and verbs by the bytes the policy writes", async () => {
  const doc = await reportJson([]);
  const [pod, secret, received, proxy, health] = events.map(size);
  assert.deepEqual(doc.top.users, [
    {
      name: "alice",
      events: 4,
      kept: 2,
      omittedStage: 1,
      bytesIn: pod + secret + received + health,
      bytesOut: doc.rules[2].bytesOut + doc.rules[1].bytesOut,
    },
    { name: "system:kube-proxy", events: 1, kept: 0, omittedStage: 0, bytesIn: proxy, bytesOut: 0 },
  ]);
  assert.deepEqual(doc.top.resources.map((e) => [e.name, e.events, e.bytesIn]), [
    ["core/pods", 3, pod + received + proxy],
    ["core/secrets", 1, secret],
    ["/healthz", 1, health],
  ]);
  assert.deepEqual(doc.top.verbs.map((e) => [e.name, e.events]), [["create", 4], ["get", 1]]);
  for (const list of Object.values(doc.top)) assert.deepEqual(sum(list), stats(doc.total));
});

Deno.test("report --json keeps its keys and adds top, then compare with --compare", async () => {
  assert.deepEqual(Object.keys(await reportJson([])), [
    "rules",
    "noMatch",
    "total",
    "neverMatched",
    "top",
  ]);
  const doc = await reportJson(["--compare", "meta.yaml"]);
  assert.deepEqual(Object.keys(doc), [
    "rules",
    "noMatch",
    "total",
    "neverMatched",
    "top",
    "compare",
  ]);
  assert.deepEqual(Object.keys(doc.rules[0]), [
    "index",
    "level",
    "description",
    "events",
    "kept",
    "omittedStage",
    "bytesIn",
    "bytesOut",
  ]);
});

Deno.test("--top N shortens the lists; names past the cap are summed in one (other) entry", async () => {
  const doc = await reportJson(["--top", "1"]);
  assert.deepEqual(doc.top.resources.map((e) => e.name), ["core/pods"]);
  const t = new Tally(2);
  for (const [name, bytes] of [["a", 1], ["b", 5], ["c", 7], ["d", 1], ["a", 1]] as const) {
    const s = t.stats(name);
    s.events++;
    s.bytesOut += bytes;
  }
  assert.deepEqual(t.top(10).map((e) => [e.name, e.events, e.bytesOut, e.other ?? false]), [
    ["(other)", 2, 8, true],
    ["b", 1, 5, false],
    ["a", 2, 2, false],
  ]);
});

Deno.test("report --compare says what the other policy keeps and saves per rule of the first", async () => {
  const doc = await reportJson(["--compare", "meta.yaml"]);
  const c = doc.compare!;
  assert.equal(c.policy, "meta.yaml");
  // meta.yaml keeps every stage at Metadata: the pod written with its objects by rule 2
  // costs less, the RequestReceived event rule 2 dropped is written, and so are the events
  // POLICY drops (kube-proxy by rule 0, /healthz by no rule).
  assert.deepEqual(c.perRule.map((r) => [r.index, r.events, r.kept]), [
    [0, 1, 1],
    [1, 1, 1],
    [2, 2, 2],
  ]);
  assert.deepEqual([c.perRuleNoMatch.events, c.perRuleNoMatch.kept], [1, 1]);
  assert.equal(c.perRule[0].savedBytes, -c.perRule[0].bytesOut, "rule 0 wrote nothing");
  assert.equal(c.perRule[1].savedBytes, doc.rules[1].bytesOut - c.perRule[1].bytesOut);
  assert.deepEqual(sum([...c.perRule, c.perRuleNoMatch]), stats(c.total));
  assert.equal(c.savedBytes, doc.total.bytesOut - c.total.bytesOut);
  assert.deepEqual(c.rules.map((r) => [r.index, r.level, r.events, r.kept]), [
    [0, "Metadata", 5, 5],
  ]);
  assert.deepEqual([c.noMatch.events, c.neverMatched], [0, []]);

  const table = await run(["report", "-p", "p.yaml", "--compare", "meta.yaml", "audit.log"], files);
  assert.equal(table.status, 0, table.stderr);
  const out = table.stdout.split("\n");
  const at = out.indexOf(
    "compared with meta.yaml: what it writes of the events each rule above decided",
  );
  assert.ok(at > 0, table.stdout);
  assert.match(
    out[at + 1],
    /^RULE\s+EVENTS\s+KEPT\s+BYTES-OUT\s+OTHER-KEPT\s+OTHER-BYTES-OUT\s+SAVED$/,
  );
  assert.match(out.at(-2)!, /^rules never matched: none$/);
});

Deno.test("--html, --compare and --top are report options; bad values exit 2 before reading", async () => {
  for (const flag of [["--html", "x.html"], ["--compare", "meta.yaml"], ["--top", "3"]]) {
    const r = await run(["eval", "-p", "p.yaml", ...flag, "audit.log"], files);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${flag[0]} is only for report`));
  }
  for (const top of ["0", "-1", "two", "1.5"]) {
    const r = await run(["report", "-p", "p.yaml", `--top=${top}`, "audit.log"], files);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--top must be a positive integer/);
  }
  await withTempDir("auditpipe-report-html-", async (dir) => {
    const page = `${dir}/missing/report.html`;
    const r = await run(["report", "-p", "p.yaml", "--html", page, "audit.log"], files);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`cannot write ${page}: `));
    assert.equal(r.stdout, "", "no report printed");
    const bad = await run(["report", "-p", "p.yaml", "--compare", `${dir}/nope.yaml`, "a"], files);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /cannot read policy .*nope\.yaml/);
  });
});

Deno.test("svg bars scale every track to the longest, skip empty segments and cut long labels", () => {
  const svg = svgBars(
    [
      {
        label: "a".repeat(100),
        note: "10 B",
        tracks: [[{ value: 6, tone: "kept", title: "six" }, {
          value: 4,
          tone: "dropped",
          title: "four",
        }]],
      },
      { label: "b & <c>", note: "5 B", tracks: [[{ value: 5, tone: "kept", title: "five" }]] },
      { label: "empty", note: "0 B", tracks: [[{ value: 0, tone: "kept", title: "none" }]] },
    ],
    "T",
    { width: 400, labelWidth: 100, noteWidth: 88 },
  );
  // 400 - 100 - 88 - 12 = 200 units for the longest track (10): 20 per unit.
  const rects = [...svg.matchAll(/<rect class="tone-(\w+)" x="([\d.]+)" y="\d+" width="([\d.]+)"/g)]
    .map((m) => [m[1], Number(m[2]), Number(m[3])]);
  assert.deepEqual(rects, [["kept", 100, 120], ["dropped", 220, 80], ["kept", 100, 100]]);
  assert.ok(svg.includes(`<title>${"a".repeat(100)}</title>`), "the whole label as tooltip");
  assert.ok(svg.includes(`>${"a".repeat(12)}…</text>`), "the label cut to its column");
  assert.ok(svg.includes(">b &amp; &lt;c&gt;</text>"));
});

/** Names a log may carry that would be markup if the page did not escape them. */
const EVIL_USER = `<script>window.pwned = "user"</script>&amp; "x" 'y'`;
const EVIL_RESOURCE = `<img src=x onerror="window.pwned='resource'">`;
const evil = podEvent("evil", {
  user: { username: EVIL_USER },
  objectRef: { resource: EVIL_RESOURCE, namespace: "default", name: "e" },
});

Deno.test("the HTML page escapes names from the log and carries a CSP that forbids fetches", async () => {
  await withTempDir("auditpipe-report-html-", async (dir) => {
    const log = lines + JSON.stringify(evil) + "\n";
    const r = await run(
      ["report", "-p", "p.yaml", "--html", `${dir}/r.html`, "audit.log"],
      { ...files, "audit.log": log },
    );
    assert.equal(r.status, 0, r.stderr);
    const html = await Deno.readTextFile(`${dir}/r.html`);
    assert.ok(!html.includes("<script>window.pwned"), "the username is not markup");
    assert.ok(!html.includes("<img"), "the resource is not markup");
    assert.ok(
      html.includes("&lt;script&gt;window.pwned = &quot;user&quot;&lt;/script&gt;&amp;amp;"),
    );
    assert.match(
      html,
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">/,
    );
    assert.doesNotMatch(html, /<[a-z][^>]*\s(src|href|srcset|action)=/i, "no tag loads anything");
    assert.equal(html.match(/<script>/g)?.length, 1, "one script: the page's own");
  });
});

/** Every table, summary card and never-matched list of the page, as rendered text. */
const READ_PAGE = `(() => {
  const rows = (sel) => [...document.querySelectorAll(sel)]
    .map((tr) => [...tr.cells].map((c) => c.innerText.trim()));
  const tables = {};
  for (const t of document.querySelectorAll("table[id]")) {
    tables[t.id] = { body: rows("#" + t.id + " tbody tr"), foot: rows("#" + t.id + " tfoot tr") };
  }
  const cards = {};
  for (const c of document.querySelectorAll(".card")) {
    cards[c.id] = c.querySelector(".value").innerText;
  }
  const never = (id) => [...document.querySelectorAll("#" + id + " li")].map((li) => Number(li.dataset.rule));
  return {
    tables, cards, never: never("never"), compareNever: never("compare-never"),
    loaders: [...document.querySelectorAll("[src],[href],[srcset],[action],[poster],iframe,object,embed,link,base")]
      .map((e) => e.outerHTML),
    csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content ?? null,
    pwned: window.pwned ?? null,
  };
})()`;

interface Page {
  tables: Record<string, { body: string[][]; foot: string[][] }>;
  cards: Record<string, string>;
  never: number[];
  compareNever: number[];
  loaders: string[];
  csp: string | null;
  pwned: string | null;
}

/** A number as the page prints it, `1,234`, read back. */
const n = (cell: string) => Number(cell.replaceAll(",", ""));
/** A row of the page with its number cells read back as numbers. */
const parsed = (row: string[], textColumns: number) =>
  row.map((cell, i) => (i < textColumns ? cell : n(cell)));

/** The cells the page shows for a rule's counts: events, kept, dropped, … bytes saved. */
const statCells = (s: Stats) => [
  s.events,
  s.kept,
  s.events - s.kept,
  s.omittedStage,
  s.bytesIn,
  s.bytesOut,
  s.bytesIn - s.bytesOut,
];

function assertRuleTable(table: Page["tables"][string], counts: Counts) {
  assert.deepEqual(
    table.body.map((r) => parsed(r, 3)),
    counts.rules.map((r) => [String(r.index), r.level, r.description, ...statCells(r)]),
  );
  assert.deepEqual(table.foot.map((r) => parsed(r, 3)), [
    ["–", "None", "(no rule matched)", ...statCells(counts.noMatch)],
    ["total", "", "", ...statCells(counts.total)],
  ]);
}

function assertPageShows(page: Page, doc: Doc) {
  assertRuleTable(page.tables["rules-table"], doc);
  assert.deepEqual(page.never, doc.neverMatched);
  for (const [id, list] of Object.entries(doc.top)) {
    const table = page.tables[`top-${id}`];
    assert.deepEqual(
      table.body.map((r) => parsed(r.slice(0, 5), 1)),
      list.map((e) => [e.name === "" ? "(none)" : e.name, e.events, e.kept, e.bytesIn, e.bytesOut]),
      `top ${id}`,
    );
  }
  const t = doc.total;
  assert.deepEqual(
    Object.fromEntries(Object.entries(page.cards).map(([k, v]) => [k, n(v)])),
    {
      "sum-events": t.events,
      "sum-kept": t.kept,
      "sum-bytes-in": t.bytesIn,
      "sum-bytes-out": t.bytesOut,
      "sum-never": doc.neverMatched.length,
      "sum-nomatch": doc.noMatch.events,
      "sum-compare-kept": doc.compare!.total.kept,
      "sum-compare": Math.abs(doc.compare!.savedBytes),
    },
  );
  const c = doc.compare!;
  const compareCells = (mine: Stats, other: SavedRow) => [
    mine.events,
    mine.kept,
    mine.bytesOut,
    other.kept,
    other.bytesOut,
    other.savedBytes,
  ];
  const table = page.tables["compare-table"];
  assert.deepEqual(
    table.body.map((r) => parsed(r, 3)),
    c.perRule.map((o) => {
      const r = doc.rules[o.index];
      return [String(o.index), r.level, r.description, ...compareCells(r, o)];
    }),
  );
  assert.deepEqual(table.foot.map((r) => parsed(r, 3)), [
    ["–", "None", "(no rule matched)", ...compareCells(doc.noMatch, c.perRuleNoMatch)],
    ["total", "", "", ...compareCells(t, { ...c.total, savedBytes: c.savedBytes })],
  ]);
  assertRuleTable(page.tables["compare-rules-table"], c);
  assert.deepEqual(page.compareNever, c.neverMatched);
}

Deno.test(
  needs("chromium", "in Chromium, the HTML report shows the --json numbers and requests nothing"),
  async (t) => {
    await withTempDir("auditpipe-report-html-", async (dir) => {
      const log = [...sampleEvents(400), evil, podEvent("nobody", { user: {} })]
        .map((e) => JSON.stringify(e)).join("\n") + "\n";
      await Deno.writeTextFile(`${dir}/audit.log`, log);
      const policy = `${ROOT}policy/examples/gce.yaml`;
      const other = `${ROOT}policy/examples/talk-levels.yaml`;
      // The real program, as an operator runs it: --json on stdout and the page beside it.
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}main.ts`,
          "policy",
          "report",
          "--json",
          "--top",
          "100",
          "-p",
          policy,
          "--compare",
          other,
          "--html",
          `${dir}/report.html`,
          `${dir}/audit.log`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const doc: Doc = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.ok(doc.compare!.savedBytes !== 0 && doc.neverMatched.length > 0, "a telling report");
      assert.ok(doc.top.users.some((u) => u.name === EVIL_USER));
      assert.ok(doc.top.resources.some((u) => u.name === `core/${EVIL_RESOURCE}`));

      const browser = await Headless.launch();
      try {
        await t.step("the recorder sees a page's requests (control)", async () => {
          await Deno.writeTextFile(
            `${dir}/fetches.html`,
            `<img src="http://auditpipe.invalid/x.png"><script>console.log("ran")</script>`,
          );
          const page = await browser.visit(`file://${dir}/fetches.html`);
          assert.deepEqual(page.requests, [
            `file://${dir}/fetches.html`,
            "http://auditpipe.invalid/x.png",
          ]);
          assert.ok(page.messages.includes("console.log: ran"), page.messages.join("\n"));
          await page.close();
        });

        let page: Visit | undefined;
        await t.step("the page loads only itself, and nothing complains", async () => {
          page = await browser.visit(`file://${dir}/report.html`);
          assert.deepEqual(page.requests, [`file://${dir}/report.html`]);
          assert.deepEqual(page.messages, []);
        });
        const seen = await page!.evaluate<Page>(READ_PAGE);
        await t.step("no element loads anything and the CSP forbids fetches", () => {
          assert.deepEqual(seen.loaders, []);
          assert.equal(
            seen.csp,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:",
          );
        });
        await t.step("every number in the page is the --json report's", () => {
          assertPageShows(seen, doc);
        });
        await t.step("names from the log render as text and run nothing", () => {
          assert.equal(seen.pwned, null);
          const users = seen.tables["top-users"].body.map((r) => r[0]);
          assert.ok(users.includes(EVIL_USER), users.join("\n"));
          assert.ok(users.includes("(none)"), "an event without a username");
          const resources = seen.tables["top-resources"].body.map((r) => r[0]);
          assert.ok(resources.includes(`core/${EVIL_RESOURCE}`), resources.join("\n"));
        });
        await t.step("a click on a column sorts the table by it, totals stay last", async () => {
          const column = await page!.evaluate<string[][]>(`(() => {
            const th = [...document.querySelectorAll("#rules-table thead th")]
              .find((h) => h.innerText.trim() === "Bytes written");
            th.click();
            const rows = document.querySelectorAll("#rules-table tbody tr, #rules-table tfoot tr");
            return [[th.dataset.dir], ...[...rows].map((r) => [r.cells[0].innerText, r.cells[8].innerText])];
          })()`);
          assert.deepEqual(column[0], ["desc"]);
          const bytes = column.slice(1, -2).map((r) => n(r[1]));
          assert.deepEqual(bytes, [...bytes].sort((a, b) => b - a));
          assert.deepEqual(column.slice(-2).map((r) => r[0]), ["–", "total"]);
        });
        await page?.close();
      } finally {
        await browser.close();
      }
    });
  },
);
