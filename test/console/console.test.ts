/**
 * The partner console in a real browser: Debian's chromium driven by playwright-core (no browser
 * download), against the real stack (simulated enclave and host over sockets). Two partners, each
 * with their own console process and browser context, go through attest → review → sign → upload
 * → grant → run closed-loop and audience-overlap → charts → audit; a console whose pinned
 * measurement differs shows a red attestation and cannot upload; an upload is cancelled; every
 * page passes axe-core with no serious violation, raises no CSP violation and talks to its own
 * console only. Screenshots of each page go to docs/console/ with CLEANROOM_SCREENSHOTS=1.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import axe from "axe-core";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { type ConsoleServer, startConsoleServer } from "../../client/console/server.js";
import { ConsoleSession } from "../../client/console/session.js";
import { FileStateStore } from "../../client/node/file-store.js";
import {
  CleanroomClient,
  decryptAgeNode,
  generatePartyKeys,
  HostClient,
  loadPartyKeys,
  type PartyKeyFile,
  type PartyKeys,
} from "../../client/node/index.js";
import type { Contract } from "../../protocol/contract/types.js";
import { buildConsoleAssets } from "../../scripts/build-console.js";
import { simPolicy } from "../../scripts/demo/flow.js";
import { useCaseContract, useCaseRows } from "../../scripts/demo/usecases.js";
import { startTestStack, type TestStack } from "../e2e/stack.js";
import * as truth from "../enclave/truth.js";
import { skipUnless } from "../tools.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP_NOTE = `needs ${CHROMIUM} (apt-get install chromium)`;
if (!HAVE_CHROMIUM) {
  process.stderr.write(
    `notice: ${CHROMIUM} is missing; the console's browser tests are skipped (Debian package: chromium)\n`,
  );
}

/**
 * Where each page's screenshot goes: docs/console/ (linked from the README) when
 * CLEANROOM_SCREENSHOTS is set, so a plain test run leaves the tracked tree as it was.
 */
const SHOTS = process.env.CLEANROOM_SCREENSHOTS
  ? join(process.cwd(), "docs/console")
  : join(tmpdir(), `cleanroom-console-shots-${process.pid}`);
const IDENTITIES = 2000;
type PartyId = "advertiser" | "publisher";

interface Party {
  id: PartyId;
  keyFile: PartyKeyFile;
  keys: PartyKeys;
  dataDir: string;
  server: ConsoleServer;
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested. */
  requests: string[];
  /** Every JSON body the console sent the page. */
  bodies: string[];
}

let stack: TestStack;
let work: string;
let contract: Contract;
let browser: Browser;
const parties = {} as Record<PartyId, Party>;
const servers: ConsoleServer[] = [];
const csp: string[] = [];
const pageErrors: string[] = [];

async function openConsole(
  keys: PartyKeys,
  dataDir: string,
  policy: EvidencePolicy,
  state: string,
  url = stack.url,
): Promise<ConsoleServer> {
  const client = await CleanroomClient.open({
    host: new HostClient(url),
    store: new FileStateStore(join(work, state)),
    policy,
    contract,
    keys,
    decrypt: decryptAgeNode,
  });
  const session = new ConsoleSession({
    client,
    approvalsDir: join(work, "approvals"),
    dataDir,
    contractFile: join(work, "contract.json"),
    version: "test",
  });
  const server = await startConsoleServer({ session, assetsDir: join(work, "assets") });
  servers.push(server);
  return server;
}

/** A browser context and page on `server`, recording what the page requests and receives. */
async function openPage(
  server: ConsoleServer,
): Promise<{ context: BrowserContext; page: Page; requests: string[]; bodies: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const requests: string[] = [];
  const bodies: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("response", (r) => {
    if (r.url().includes("/api/") && r.headers()["content-type"]?.startsWith("application/json")) {
      void r.text().then(
        (t) => bodies.push(t),
        () => undefined,
      );
    }
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.exposeFunction("__reportCsp", (v: string) => csp.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as unknown as { __reportCsp: (v: string) => void }).__reportCsp(
        `${e.violatedDirective} ${e.blockedURI}`,
      ),
    );
  });
  await page.goto(server.url);
  return { context, page, requests, bodies };
}

async function go(p: Party | Page, route: string): Promise<Page> {
  const page = "page" in p ? p.page : p;
  await page.evaluate((r) => {
    location.hash = r;
  }, route);
  return page;
}

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** axe-core run in the page; returns the serious and critical violations. */
async function axeProblems(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axe.source);
  const result = await page.evaluate(async () => {
    const a = (window as unknown as { axe: typeof axe }).axe;
    return a.run(document, { resultTypes: ["violations"] });
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

/** A Parquet file's column types and rows, as DuckDB reads it. */
async function readParquet(path: string): Promise<{ types: string[]; rows: unknown[][] }> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const r = await conn.runAndReadAll("SELECT * FROM read_parquet($1)", [path]);
    return { types: r.columnTypes().map((t) => t.toString()), rows: r.getRowsJS() as unknown[][] };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

function blobsHeld(): string[] {
  const dir = join(stack.storeDir, "blobs");
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** A TCP proxy to the host's port that passes bytes towards the host at about `rate` bytes/s. */
async function throttledProxy(
  port: string,
  rate: number,
): Promise<{ url: string; bytes: () => number; close: () => Promise<void> }> {
  let total = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: Number(port) });
    sockets.add(client).add(upstream);
    client.on("data", (b: Buffer) => {
      total += b.length;
      upstream.write(b);
      client.pause();
      setTimeout(() => client.resume(), (b.length / rate) * 1000);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    bytes: () => total,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("the partner console in a browser", () => {
  beforeEach((ctx) => skipUnless(ctx, HAVE_CHROMIUM, SKIP_NOTE));

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) return;
    work = mkdtempSync(join(tmpdir(), "cleanroom-console-"));
    await buildConsoleAssets(join(work, "assets"));
    stack = await startTestStack({ record: false });
    const keyFiles = { advertiser: await generatePartyKeys(), publisher: await generatePartyKeys() };
    const keys = {
      advertiser: await loadPartyKeys(keyFiles.advertiser),
      publisher: await loadPartyKeys(keyFiles.publisher),
    };
    contract = useCaseContract(
      (["advertiser", "publisher"] as const).map((id) => ({
        id,
        name: id === "advertiser" ? "Acme Shoes" : "Daily News",
        signingKey: keys[id].signingKey,
        ageRecipient: keys[id].ageRecipient,
      })),
    );
    writeFileSync(join(work, "contract.json"), JSON.stringify(contract, null, 2));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    for (const id of ["advertiser", "publisher"] as const) {
      const dataDir = join(work, `data-${id}`);
      mkdirSync(dataDir);
      const which = id === "advertiser" ? "purchases" : "exposures";
      const file = id === "advertiser" ? "advertiser_purchases.csv" : "publisher_exposures.csv";
      writeFileSync(join(dataDir, file), [...useCaseRows(which, { identities: IDENTITIES })].join(""));
      const server = await openConsole(keys[id], dataDir, simPolicy(stack.simDir), `state-${id}`);
      parties[id] = {
        id,
        keyFile: keyFiles[id],
        keys: keys[id],
        dataDir,
        server,
        ...(await openPage(server)),
      };
    }
  }, 120_000);

  afterAll(async () => {
    if (!HAVE_CHROMIUM) return;
    await browser?.close();
    for (const s of servers) await s.close();
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("answers only with its token, at its own address, under a strict CSP", async () => {
    const s = parties.advertiser.server;
    const page = await fetch(`${s.origin}/`);
    expect(page.status).toBe(200);
    const policy = page.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("default-src 'none'");
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    const api = `${s.origin}/api/session`;
    expect((await fetch(api)).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const auth = { authorization: `Bearer ${s.token}` };
    expect((await fetch(api, { headers: auth })).status).toBe(200);
    expect((await fetch(api, { headers: { ...auth, origin: "http://evil.example" } })).status).toBe(403);
    // A DNS-rebound name reaches the same socket with another Host header.
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(
        api,
        { headers: { host: "evil.example", authorization: `Bearer ${s.token}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(rebound).toBe(403);
    expect(parties.publisher.server.token).not.toBe(s.token);
  });

  it("shows a genuine enclave that holds no contract yet", async () => {
    for (const p of Object.values(parties)) {
      await expect
        .poll(() => p.page.locator("[data-attestation]").getAttribute("data-attestation"))
        .toBe("no-contract");
      await expect.poll(() => p.page.locator("[data-badge]").getAttribute("data-badge")).toBe("no-contract");
    }
  });

  it("reviews and signs the contract in each party's own browser, then submits it", async () => {
    for (const id of ["advertiser", "publisher"] as const) {
      const page = await go(parties[id], "#/contract");
      await page.getByRole("heading", { name: "Approved queries" }).waitFor();
      // The review: every approved query with its rule, and the warnings.
      for (const q of contract.queries) await expect.poll(() => page.locator(`#q-${q.id}`).count()).toBe(1);
      await page.getByRole("button", { name: "Sign this contract…" }).click();
      const dialog = page.getByRole("dialog");
      await expect.poll(() => dialog.isVisible()).toBe(true);
      if (id === "advertiser") await shot(page, "contract-sign", false);
      await dialog.getByRole("button", { name: "Sign with my key" }).click();
      await expect.poll(() => page.locator(`tr[data-party=${id}] .ok`).count(), { timeout: 10_000 }).toBe(1);
    }
    const adv = parties.advertiser.page;
    await go(adv, "#/attestation");
    await go(adv, "#/contract");
    await expect
      .poll(() => adv.locator("[data-contract-state]").getAttribute("data-contract-state"))
      .toBe("ready");
    await adv.getByRole("button", { name: "Submit to the enclave" }).click();
    await expect
      .poll(() => adv.locator("[data-contract-state]").getAttribute("data-contract-state"), {
        timeout: 15_000,
      })
      .toBe("active");
    await shot(adv, "contract");
  });

  it("attests the enclave holding the contract: every check passes, the measurement matches", async () => {
    for (const p of Object.values(parties)) {
      const page = await go(p, "#/attestation");
      await page.getByRole("button", { name: "Re-attest" }).click();
      await expect
        .poll(() => page.locator("[data-attestation]").getAttribute("data-attestation"), { timeout: 10_000 })
        .toBe("verified");
      expect(await page.locator("table.checks tr.failed").count()).toBe(0);
      expect(await page.locator("table.checks tbody tr").count()).toBeGreaterThan(3);
      expect(await page.getByText("matches the pinned release").count()).toBe(1);
    }
    await shot(parties.advertiser.page, "attestation");
  });

  it("checks, encrypts, uploads and grants each party's data, with the quality report", async () => {
    for (const id of ["advertiser", "publisher"] as const) {
      const page = await go(parties[id], "#/data");
      const ds = id === "advertiser" ? "advertiser_purchases" : "publisher_exposures";
      const section = page.locator(`section[data-dataset=${ds}]`);
      await section.getByRole("button", { name: "Check" }).waitFor();
      await section.getByLabel(/File in/).selectOption(`${ds}.csv`);
      await section.getByRole("button", { name: "Check" }).click();
      await expect
        .poll(() => section.locator("[data-check]").getAttribute("data-check"), { timeout: 15_000 })
        .toBe("ok");
      await section.getByRole("button", { name: "Encrypt and upload" }).click();
      await expect
        .poll(() => section.locator("[data-upload]").getAttribute("data-upload"), { timeout: 30_000 })
        .toBe("done");
      await section.getByRole("button", { name: "Grant to the enclave" }).click();
      await expect.poll(() => section.locator("[data-grant]").count(), { timeout: 30_000 }).toBe(1);
      const loaded = (await section.locator("[data-grant]").textContent()) ?? "";
      const rows = Number(/([\d,]+) rows/.exec(loaded)![1]!.replaceAll(",", ""));
      expect(rows).toBeGreaterThan(IDENTITIES / 2);
      // The quality report, decrypted by this party's process, and the load in the versions table.
      await expect.poll(() => section.getByRole("region", { name: "Quality report" }).count()).toBe(1);
      await expect
        .poll(() => section.locator("table.versions tbody tr").count(), { timeout: 10_000 })
        .toBe(1);
      if (id === "advertiser") {
        // A refresh: the same dataset uploaded again and granted as a new version replacing the first.
        await section.getByRole("button", { name: "Encrypt and upload" }).click();
        await expect
          .poll(() => section.locator("[data-upload]").getAttribute("data-upload"), { timeout: 30_000 })
          .toBe("done");
        await section.getByRole("radio", { name: /replaces its rows/ }).check();
        await section.getByRole("button", { name: "Grant as a new version (replace version 1)" }).click();
        await expect
          .poll(() => section.locator("[data-grant]").textContent(), { timeout: 30_000 })
          .toMatch(/as version 2 \(replace; [\d,]+ rows in the dataset now\)/);
        await expect
          .poll(() => section.locator("table.versions tbody tr").count(), { timeout: 10_000 })
          .toBe(2);
        await shot(page, "data");
      }
    }
  });

  it("runs closed-loop and audience-overlap from typed forms; each party sees both results", async () => {
    const adv = await go(parties.advertiser, "#/queries");
    const closed = adv.locator("section[data-query=closed-loop]");
    await closed.getByLabel(/campaign/).fill("spring24");
    await closed.getByRole("button", { name: "Run closed-loop" }).click();
    await expect.poll(() => closed.locator("[data-run=done]").count(), { timeout: 30_000 }).toBe(1);
    const lastTouch = adv.locator("section[data-query=last-touch]");
    expect(await lastTouch.getByLabel(/start/).getAttribute("type")).toBe("date");
    await lastTouch.getByLabel(/start/).fill("2024-04-01");
    await lastTouch.getByLabel(/end/).fill("2024-05-01");
    await lastTouch.getByRole("button", { name: "Run last-touch" }).click();
    await expect.poll(() => lastTouch.locator("[data-run=done]").count(), { timeout: 30_000 }).toBe(1);
    // The budget left follows the epsilon the verified audit log records.
    await expect
      .poll(() => adv.locator("#budget-meter").evaluate((m) => (m as HTMLMeterElement).value), {
        timeout: 10_000,
      })
      .toBe(1);
    await shot(adv, "queries");

    const pub = await go(parties.publisher, "#/queries");
    const overlap = pub.locator("section[data-query=audience-overlap]");
    await overlap.getByRole("button", { name: "Run audience-overlap" }).click();
    await expect.poll(() => overlap.locator("[data-run=done]").count(), { timeout: 30_000 }).toBe(1);
    // last-touch is the advertiser's alone: the publisher's form cannot run it.
    expect(await pub.getByRole("button", { name: "Run last-touch" }).isDisabled()).toBe(true);

    for (const p of Object.values(parties)) {
      const page = await go(p, "#/results");
      await expect
        .poll(() => page.locator("tr[data-query=audience-overlap]").count(), { timeout: 10_000 })
        .toBe(1);
      expect(await page.locator("tr[data-query=closed-loop]").count()).toBe(1);
    }
    await shot(parties.publisher.page, "results");
  });

  it("draws each result by its kind, with the exact numbers in a sortable table and a CSV download", async () => {
    const plain = truth.parse({
      purchases: readFileSync(join(parties.advertiser.dataDir, "advertiser_purchases.csv"), "utf8"),
      exposures: readFileSync(join(parties.publisher.dataDir, "publisher_exposures.csv"), "utf8"),
    });
    const cases = [
      {
        party: "advertiser",
        query: "closed-loop",
        chart: "lift",
        exact: truth.closedLoop(plain, "spring24"),
      },
      {
        party: "publisher",
        query: "audience-overlap",
        chart: "overlap",
        exact: truth.audienceOverlap(plain),
      },
      { party: "advertiser", query: "last-touch", chart: "bars", exact: undefined },
    ] as const;
    for (const c of cases) {
      const page = await go(parties[c.party], "#/results");
      await page.locator(`tr[data-query=${c.query}] a`).click();
      const figure = page.locator("figure[data-chart]");
      await expect.poll(() => figure.getAttribute("data-chart"), { timeout: 10_000 }).toBe(c.chart);
      await expect.poll(() => figure.locator("svg.chart").count()).toBeGreaterThan(0);
      const table = page.locator("table.result");
      const cells = await table
        .locator("tbody tr")
        .evaluateAll((trs) =>
          trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent ?? "")),
        );
      if (c.exact) {
        // The page shows exactly the aggregates computed on the plaintext, k-suppressed.
        const shown = cells.map((r) => r.map((t) => t.replaceAll(",", "")));
        const want = c.exact.rows.map((r) =>
          r.map((v) => (typeof v === "number" ? String(Number(v.toFixed(4))) : String(v))),
        );
        expect(shown).toEqual(want);
      } else {
        // Noised: each number carries its 95 % noise interval, shown beside it and on the chart.
        expect(cells.length).toBe(3);
        expect(await table.locator(".noise").count()).toBe(6);
        expect(await figure.locator("figcaption").textContent()).toMatch(
          /within ±[\d,.]+ of the exact one 95 %/,
        );
      }
      expect(await page.getByRole("note").textContent()).toMatch(
        c.exact ? /fewer than 50 distinct people/ : /noise/,
      );
      // Sorting by the first column, descending, reverses the canonical order.
      const header = table.locator("thead button").first();
      await header.click();
      await header.click();
      expect(await table.locator("thead th").first().getAttribute("aria-sort")).toBe("descending");
      const firstCells = await table.locator("tbody tr td:first-child").allInnerTexts();
      expect(firstCells).toEqual(cells.map((r) => r[0]).reverse());
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Download CSV" }).click(),
      ]);
      const csv = readFileSync((await download.path())!, "utf8");
      expect(csv.split("\n")[0]).toBe(
        {
          "closed-loop": "arm,users,converters,conversion_rate",
          "audience-overlap": "segment,publisher_users,overlap_users",
          "last-touch": "channel,conversions,revenue",
        }[c.query],
      );
      expect(csv.trim().split("\n").length).toBe(cells.length + 1);
      if (c.exact) {
        // Parquet, typed as the enclave declared the columns, holding the same rows.
        const [parquet] = await Promise.all([
          page.waitForEvent("download"),
          page.getByRole("button", { name: "Download Parquet" }).click(),
        ]);
        const read = await readParquet((await parquet.path())!);
        expect(read.types.slice(0, 2)).toEqual(["VARCHAR", "BIGINT"]);
        expect(read.rows.map((r) => r.map(String))).toEqual(
          c.exact.rows.map((r) => r.map((v) => String(typeof v === "number" ? Number(v.toFixed(4)) : v))),
        );
      }
      if (c.chart === "lift") {
        const [e, k] = [
          c.exact!.rows.find((r) => r[0] === "exposed")!,
          c.exact!.rows.find((r) => r[0] === "control")!,
        ];
        const rr = Number(e[2]) / Number(e[1]) / (Number(k[2]) / Number(k[1])) - 1;
        expect(await page.locator(".headline").textContent()).toContain(`Lift +${(rr * 100).toFixed(1)} %`);
      }
      await shot(page, `result-${c.query}`);
    }
  });

  it("verifies the audit log as a timeline holding every head this party saw", async () => {
    for (const p of Object.values(parties)) {
      const page = await go(p, "#/audit");
      await expect
        .poll(() => page.locator("[data-audit]").getAttribute("data-audit"), { timeout: 15_000 })
        .toBe("verified");
      const entries = await page.locator("ol.timeline li").count();
      // started, contract, 3 × (grant + load), 3 runs
      expect(entries).toBe(1 + 1 + 6 + 3);
      expect(await page.locator(".marker.you").count()).toBe(1);
    }
    await shot(parties.advertiser.page, "audit");
  });

  it("cancels an upload in progress: the upload stops and nothing completes at the host", async () => {
    // The host behind a slow link (about 2 MB/s), so the upload is surely still moving when Cancel is pressed.
    const slow = await throttledProxy(new URL(stack.url).port, 2e6);
    const p = parties.advertiser;
    const block = [...useCaseRows("purchases", { identities: 5000, seed: 7 })]
      .join("")
      .split("\n")
      .slice(1, -1)
      .join("\n");
    const big = join(p.dataDir, "big-purchases.csv");
    writeFileSync(big, "user_id,purchase_ts,amount,category\n");
    for (let size = 0; size < 24e6; size += block.length + 1) writeFileSync(big, `${block}\n`, { flag: "a" });
    const server = await openConsole(p.keys, p.dataDir, simPolicy(stack.simDir), "state-cancel", slow.url);
    const { page, context } = await openPage(server);
    try {
      const before = blobsHeld();
      await go(page, "#/data");
      const section = page.locator("section[data-dataset=advertiser_purchases]");
      await section.getByLabel(/File in/).selectOption("big-purchases.csv");
      await section.getByRole("button", { name: "Check" }).click();
      await expect
        .poll(() => section.locator("[data-check]").getAttribute("data-check"), { timeout: 30_000 })
        .toBe("ok");
      await section.getByRole("button", { name: "Encrypt and upload" }).click();
      await section.getByText("uploading the ciphertext").waitFor({ timeout: 30_000 });
      await section.getByRole("button", { name: "Cancel upload" }).click();
      await expect
        .poll(() => section.locator("[data-upload]").getAttribute("data-upload"), { timeout: 15_000 })
        .toBe("cancelled");
      // Stopped: the bytes still in flight drain (the socket buffers held them before the cancel),
      // then nothing more goes out; the file never completed, and the host holds no new blob.
      let last = -1;
      await expect
        .poll(
          async () => {
            const now = slow.bytes();
            const still = now === last;
            last = now;
            await new Promise((r) => setTimeout(r, 400));
            return still && slow.bytes() === now;
          },
          { timeout: 15_000, interval: 0 },
        )
        .toBe(true);
      expect(last).toBeLessThan(statSync(big).size);
      expect(blobsHeld()).toEqual(before);
    } finally {
      await context.close();
      await slow.close();
      rmSync(big);
    }
  });

  it("a pinned measurement that differs: red attestation, upload blocked in the page and the process", async () => {
    const good = simPolicy(stack.simDir);
    const m = good.measurements![0]!;
    const tampered: EvidencePolicy = { ...good, measurements: [`${m[0] === "0" ? "1" : "0"}${m.slice(1)}`] };
    const p = parties.advertiser;
    const server = await openConsole(p.keys, p.dataDir, tampered, "state-tampered");
    const { page, context } = await openPage(server);
    await expect
      .poll(() => page.locator("[data-attestation]").getAttribute("data-attestation"), { timeout: 10_000 })
      .toBe("refused");
    expect(await page.locator("table.checks tr.failed").count()).toBeGreaterThan(0);
    expect(await page.getByText("does not match the pinned release").count()).toBe(1);
    expect(await page.locator(".banner.state-refused").count()).toBe(1);
    await shot(page, "attestation-refused");
    await go(page, "#/data");
    const section = page.locator("section[data-dataset=advertiser_purchases]");
    await section.getByRole("button", { name: "Check" }).waitFor();
    expect(await section.getByRole("button", { name: "Encrypt and upload" }).isDisabled()).toBe(true);
    expect(await section.locator("[data-blocked=upload]").count()).toBe(1);
    // The process refuses too: nothing is encrypted or sent for an enclave that did not verify.
    const before = blobsHeld();
    const res = await fetch(`${server.origin}/api/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ dataset: "advertiser_purchases", file: "advertiser_purchases.csv" }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ATTESTATION_REFUSED");
    expect(blobsHeld()).toEqual(before);
    await context.close();
  });

  it("passes axe-core on every page with no serious violation", async () => {
    const problems: string[] = [];
    for (const route of ["#/attestation", "#/contract", "#/data", "#/queries", "#/results", "#/audit"]) {
      const page = await go(parties.advertiser, route);
      await page.locator("main h1").first().waitFor();
      await page.waitForLoadState("networkidle");
      problems.push(...(await axeProblems(page)).map((x) => `${route} ${x}`));
    }
    const page = await go(parties.advertiser, "#/results");
    await page.locator("tr[data-query=closed-loop] a").click();
    await page.locator("figure[data-chart] svg").first().waitFor();
    problems.push(...(await axeProblems(page)).map((x) => `result ${x}`));
    expect(problems).toEqual([]);
  });

  it("the pages raised no CSP violation or error, talked only to their console, and never held a key", () => {
    expect(csp).toEqual([]);
    expect(pageErrors).toEqual([]);
    for (const p of Object.values(parties)) {
      const foreign = p.requests.filter(
        (u) => !u.startsWith(`${p.server.origin}/`) && !u.startsWith("blob:"),
      );
      expect(foreign).toEqual([]);
      expect(p.requests.length).toBeGreaterThan(20);
      const secrets = [p.keyFile.signingKey.d!, p.keys.ageIdentity];
      for (const body of p.bodies) for (const s of secrets) expect(body.includes(s)).toBe(false);
      expect(p.bodies.length).toBeGreaterThan(10);
    }
  });
});
