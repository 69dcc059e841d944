/**
 * The partner's day against the real product (host and simulated enclave over sockets), through
 * the CLI: profiles, --json on the commands that act, every recipient's results (the host's
 * listing route included), status from evidence and the verified audit chain, evidence saved for
 * offline checks, the binding message when the enclave holds no contract or another one, and a
 * reset clean room caught before anything is sent.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../attestation/bytes.js";
import { SIM_FILES } from "../../attestation/sim/platform.js";
import { withLocalDuckDb } from "../../client/node/duckdb.js";
import { jsonResultToCsv, parseJsonResult, typedValue } from "../../client/sdk/results.js";
import { resultToCsv, resultToJson } from "../../enclave/sql/run.js";
import { cli, contractInitArgs, hashEmailsArgs, noCleanroomEnv, withEnv } from "../cli/main-cli.js";
import { startTestStack, type TestStack } from "../e2e/stack.js";

/** A TCP relay whose target can be switched: one URL in front of one stack, then another. */
class Relay {
  target = 0;
  readonly #sockets = new Set<Socket>();
  readonly server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: this.target });
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  switchTo(url: string): void {
    for (const s of this.#sockets) s.destroy();
    this.target = Number(new URL(url).port);
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let stack: TestStack;
let relay: Relay;
let dir: string;
const f = (n: string) => join(dir, n);
const run = (...argv: string[]) =>
  withEnv({ ...noCleanroomEnv(), CLEANROOM_STATE: f("state") }, () =>
    cli("--config", f("cleanroom.json"), ...argv),
  );
const json = (out: string) => {
  try {
    return JSON.parse(out);
  } catch {
    throw new Error(`not one JSON document:\n${out.slice(0, 2000)}`);
  }
};

async function ok(...argv: string[]) {
  const r = await run(...argv);
  expect(r.code, `${argv.join(" ")}\n${r.err}`).toBe(0);
  return r;
}

beforeAll(async () => {
  stack = await startTestStack({ record: false });
  relay = new Relay();
  const url = await relay.listen();
  relay.switchTo(stack.url);
  dir = await mkdtemp(join(tmpdir(), "cleanroom-day-"));
  for (const p of ["advertiser", "publisher"])
    expect((await cli("keygen", "--out", f(`${p}.key`))).code).toBe(0);
  await writeFile(
    f("cleanroom.json"),
    JSON.stringify({
      url,
      contract: "contract.json",
      profiles: { advertiser: { key: "advertiser.key" }, publisher: { key: "publisher.key" } },
    }),
  );
  const init = await cli(
    ...contractInitArgs(
      { advertiser: f("advertiser.key"), publisher: f("publisher.key") },
      f("contract.json"),
    ),
    "--sample-data",
    "--people",
    "1200",
  );
  expect(init.code, init.err).toBe(0);
  for (const d of ["advertiser_purchases", "publisher_exposures"]) {
    const h = await cli(...hashEmailsArgs(f(`${d}.emails.csv`), f(`${d}.csv`)));
    expect(h.code, h.err).toBe(0);
  }
  for (const p of ["advertiser", "publisher"]) {
    await ok("contract", "sign", "--profile", p, "--yes", "--out", f(`${p}.approval`));
  }
});

afterAll(async () => {
  await relay?.close();
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The simulated platform's pins, as a profile would hold them. */
const pins = () => [
  "--trust-sim-root",
  join(stack.simDir, SIM_FILES.roots),
  "--manifest",
  join(stack.simDir, SIM_FILES.expected),
];

describe("before the contract", () => {
  it("attest says the enclave holds no contract yet, and what to do", async () => {
    const r = await run("attest", ...pins());
    expect(r.code).toBe(1);
    expect(r.out).toContain("error ERR_POLICY: binding: enclave holds no contract yet");
    expect(r.err).toContain("submit it first (cleanroom contract submit)");
  });

  it("submit, then submitting again says it is already active", async () => {
    const approvals = ["--approval", f("advertiser.approval"), "--approval", f("publisher.approval")];
    const first = await ok("contract", "submit", ...approvals, ...pins(), "--json");
    expect(json(first.out)).toMatchObject({ alreadyActive: false, head: { seq: 2 } });
    const again = await ok("contract", "submit", ...approvals, ...pins(), "--json");
    expect(json(again.out)).toMatchObject({ alreadyActive: true });
  });

  it("attest against another contract says it holds another one", async () => {
    const other = JSON.parse(await readFile(f("contract.json"), "utf8"));
    other.id = "another";
    await writeFile(f("other.json"), JSON.stringify(other));
    const r = await run("attest", "--contract", f("other.json"), ...pins(), "--json");
    expect(r.code).toBe(1);
    expect(json(r.out).errors).toEqual([
      { code: "ERR_POLICY", message: "binding: enclave holds another contract" },
    ]);
  });
});

describe("evidence kept for offline checks", () => {
  it("attest --save-evidence writes the report, certificates and bundle; verify checks them offline", async () => {
    const r = await ok("attest", "--save-evidence", f("evidence.bin"), ...pins(), "--json");
    const saved = json(r.out) as { verified: boolean; verify: string[] };
    expect(saved.verified).toBe(true);
    expect((await readFile(f("evidence.bin"))).length).toBe(1184);
    // The printed command line verifies the raw report as it stands.
    const raw = await run(...saved.verify, "--json");
    expect(raw.code, raw.err).toBe(0);
    expect(json(raw.out).verified).toBe(true);
    // The bundle in one step, binding included; with its keys swapped, the binding fails.
    expect((await ok("verify", f("evidence.bundle.json"), ...pins())).out).toMatch(/VERIFIED\n$/);
    const bundle = JSON.parse(await readFile(f("evidence.bundle.json"), "utf8"));
    bundle.keys.ageRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    await writeFile(f("tampered.json"), JSON.stringify(bundle));
    const tampered = await run("verify", f("tampered.json"), ...pins());
    expect(tampered.code).toBe(1);
    expect(tampered.out).toMatch(/REFUSED\n$/);
    // And a report that does not answer the printed report data is refused too.
    const data = fromHex(saved.verify[saved.verify.indexOf("--report-data") + 1]!);
    data[0]! ^= 1;
    const args = [...saved.verify];
    args[args.indexOf("--report-data") + 1] = toHex(data);
    expect((await run(...args)).code).toBe(1);
  });
});

describe("data, queries and every recipient's results", () => {
  let closedLoop: string;
  let overlap: string;

  it("upload and grant, as JSON, with the quality report parsed", async () => {
    for (const [p, d] of [
      ["advertiser", "advertiser_purchases"],
      ["publisher", "publisher_exposures"],
    ] as const) {
      const up = json((await ok("upload", f(`${d}.csv`), "--profile", p, ...pins(), "--json")).out);
      expect(up).toMatchObject({ dataset: d, alreadyStored: false, check: { ok: true } });
      const g = json((await ok("grant", "--profile", p, ...pins(), "--json")).out);
      expect(g).toMatchObject({ dataset: d, ciphertextDigest: up.digest, quality: { dataset: d } });
      expect(g.rows).toBe(up.check.rows);
      expect(g.quality.rowsAccepted).toBe(up.check.rows);
    }
  });

  it("query prints the result id; the co-recipient lists and fetches it", async () => {
    const q = json(
      (
        await ok(
          "query",
          "closed-loop",
          "--param",
          "campaign=spring24",
          "--profile",
          "advertiser",
          ...pins(),
          "--json",
        )
      ).out,
    );
    closedLoop = q.resultId;
    expect(closedLoop).toMatch(/^[0-9a-f]{32}$/);
    expect(q.result.columns.map((c: { type: string }) => c.type)).toEqual(["VARCHAR", "BIGINT", "BIGINT"]);
    const human = await ok("query", "audience-overlap", "--profile", "publisher", ...pins());
    overlap = /result ([0-9a-f]{32})/.exec(human.err)![1]!;
    expect(human.err).toContain(`also for advertiser: cleanroom results get ${overlap}`);

    const listed = json((await ok("results", "list", "--profile", "advertiser", ...pins(), "--json")).out);
    expect(listed.results.map((r: { id: string }) => r.id)).toEqual([overlap, closedLoop]);
    expect(listed.results[0]).toMatchObject({
      verified: true,
      queryId: "audience-overlap",
      requester: "publisher",
      fetched: false,
    });
    expect(listed.results[1]).toMatchObject({ verified: true, queryId: "closed-loop", fetched: true });
    const fresh = json(
      (await ok("results", "list", "--new", "--profile", "advertiser", ...pins(), "--json")).out,
    );
    expect(fresh.results.map((r: { id: string }) => r.id)).toEqual([overlap]);

    // The co-recipient's CSV is the requester's, byte for byte; its JSON has typed numbers.
    const csv = await ok("results", "get", overlap, "--profile", "advertiser", ...pins());
    expect(csv.out).toBe(human.out);
    const typed = json(
      (
        await ok(
          "results",
          "get",
          "--query",
          "audience-overlap",
          "--format",
          "json",
          "--profile",
          "advertiser",
          ...pins(),
        )
      ).out,
    );
    const rows = csv.out
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(","));
    expect(typed.rows).toEqual(rows.map(([s, a, b]) => [s, Number(a), Number(b)]));
    // Parquet, typed as the enclave declared the columns, read back by DuckDB: the same rows.
    const parquet = join(dir, "overlap.parquet");
    await ok(
      "results",
      "get",
      overlap,
      "--format",
      "parquet",
      "--out",
      parquet,
      "--profile",
      "advertiser",
      ...pins(),
    );
    const back = await withLocalDuckDb(async (conn) =>
      (await conn.runAndReadAll(`SELECT * FROM read_parquet('${parquet}')`)).getRowsJson(),
    );
    expect(back.map((r) => r.map(String))).toEqual(rows);
    const toStdout = await run(
      "results",
      "get",
      overlap,
      "--format",
      "parquet",
      "--profile",
      "advertiser",
      ...pins(),
    );
    expect(toStdout.code).toBe(2);
    expect(toStdout.err).toContain("--out");
    expect(
      json((await ok("results", "list", "--new", "--profile", "advertiser", ...pins(), "--json")).out)
        .results,
    ).toEqual([]);
  });

  it("the host's listing route: by party, validated, in the OpenAPI document", async () => {
    const byParty = async (party: string) =>
      (
        (await (await fetch(`${stack.url}/api/v1/results?party=${party}`)).json()) as {
          results: { id: string; recipients: string[] }[];
        }
      ).results;
    expect((await byParty("advertiser")).map((r) => r.id)).toEqual([overlap, closedLoop]);
    // closed-loop goes to both; audience-overlap too (the template); the publisher sees both as well.
    expect((await byParty("publisher")).map((r) => r.id).sort()).toEqual([overlap, closedLoop].sort());
    expect(await byParty("nobody")).toEqual([]);
    const bad = await fetch(`${stack.url}/api/v1/results?party=Not%20A%20Party`);
    expect(bad.status).toBe(400);
    const limited = await fetch(`${stack.url}/api/v1/results?party=advertiser&limit=1`);
    expect(((await limited.json()) as { results: unknown[] }).results).toHaveLength(1);
    const doc = (await (await fetch(`${stack.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    expect(doc.paths["/api/v1/results"]?.get?.operationId).toBe("listResults");
  });

  it("status: datasets, approvals, runs and budget left, measurement and uptime", async () => {
    await ok(
      "query",
      "last-touch",
      "--param",
      "start=2024-04-01",
      "--param",
      "end=2024-05-01",
      "--profile",
      "advertiser",
      ...pins(),
    );
    const contract = JSON.parse(await readFile(f("contract.json"), "utf8"));
    const s = json((await ok("status", "--profile", "publisher", ...pins(), "--json")).out);
    const expected = JSON.parse(await readFile(join(stack.simDir, SIM_FILES.expected), "utf8"));
    expect(s.enclave).toMatchObject({
      platform: "sev-snp",
      simulated: true,
      measurement: expected.measurement,
    });
    expect(Date.parse(s.enclave.startedAt)).toBeLessThanOrEqual(Date.now());
    expect(s.enclave.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.approvals.map((a: { party: string }) => a.party)).toEqual(["advertiser", "publisher"]);
    const purchases = (await readFile(f("advertiser_purchases.csv"), "utf8")).trim().split("\n").length - 1;
    expect(s.datasets[0]).toMatchObject({ id: "advertiser_purchases", loaded: true, rows: purchases });
    expect(s.datasets[1]).toMatchObject({ id: "publisher_exposures", loaded: true });
    const maxRuns = contract.queries[0].policy.maxRuns;
    expect(s.queries).toEqual([
      { id: "closed-loop", runs: 1, maxRuns, runsLeft: maxRuns - 1 },
      { id: "audience-overlap", runs: 1, maxRuns: null, runsLeft: null },
      { id: "last-touch", runs: 1, maxRuns: null, runsLeft: null },
    ]);
    const dp = contract.queries[2].policy.dp;
    expect(s.budgets).toEqual([
      { party: "advertiser", budget: dp.budget, spent: dp.epsilon, left: dp.budget - dp.epsilon },
      { party: "publisher", budget: dp.budget, spent: 0, left: dp.budget },
    ]);
    const human = await ok("status", "--profile", "publisher", ...pins());
    expect(human.out).toMatch(/closed-loop\s+1 run, \d+ of \d+ left/);
    expect(human.out).toMatch(/advertiser: \d+ of \d+ left \(1 spent\)/);
  });
});

describe("a refresh of a dataset", () => {
  it("grant --replace N loads a new version; status shows it", async () => {
    const lines = (await readFile(f("advertiser_purchases.csv"), "utf8")).trimEnd().split("\n");
    const smaller = `${lines.slice(0, -10).join("\n")}\n`;
    await writeFile(f("week2.csv"), smaller);
    await ok("upload", f("week2.csv"), "--profile", "advertiser", ...pins());
    const both = await run("grant", "--profile", "advertiser", "--replace", "1", "--append", "1", ...pins());
    expect(both.err).toBe("error ERR_USAGE: give --replace or --append, not both\n");
    const g = json((await ok("grant", "--profile", "advertiser", "--replace", "1", ...pins(), "--json")).out);
    expect(g).toMatchObject({
      version: 2,
      mode: "replace",
      rows: lines.length - 11,
      totalRows: lines.length - 11,
    });
    const s = json((await ok("status", "--profile", "advertiser", ...pins(), "--json")).out);
    expect(s.datasets[0]).toMatchObject({
      id: "advertiser_purchases",
      version: 2,
      mode: "replace",
      rows: lines.length - 11,
    });
  });
});

describe("typed JSON numbers", () => {
  it.each([
    ["BIGINT", "42", 42],
    ["BIGINT", "-9007199254740991", -9007199254740991],
    ["BIGINT", "9007199254740993", "9007199254740993"],
    ["HUGEINT", "170141183460469231731687303715884105727", "170141183460469231731687303715884105727"],
    ["DECIMAL(18,4)", "12.5000", 12.5],
    ["DECIMAL(38,20)", "0.10000000000000000001", "0.10000000000000000001"],
    ["VARCHAR", "42", "42"],
    ["DOUBLE", 1.5, 1.5],
    ["BIGINT", null, null],
  ] as const)("%s %j → %j", (type, value, expected) => {
    expect(typedValue(type, value)).toEqual(expected);
  });

  it("CSV made from the enclave's JSON is the enclave's own CSV, byte for byte", () => {
    const result = {
      columns: [
        { name: "label", type: "VARCHAR" },
        { name: "n", type: "BIGINT" },
        { name: "x", type: "DOUBLE" },
      ],
      rows: [
        ["plain", "1", 1.5],
        ['with "quotes", and comma', "9007199254740993", -0.25],
        [" leading space", null, 1e21],
        ["line\nbreak", "0", null],
      ],
    };
    expect(jsonResultToCsv(parseJsonResult(new TextEncoder().encode(resultToJson(result))))).toBe(
      resultToCsv(result),
    );
  });
});

describe("a reset clean room", () => {
  let second: TestStack;
  afterAll(() => second?.stop());

  it("is caught before anything is sent, until the party accepts the reset", async () => {
    second = await startTestStack({ record: false });
    relay.switchTo(second.url);
    const approvals = ["--approval", f("advertiser.approval"), "--approval", f("publisher.approval")];
    const refused = await run(
      "contract",
      "submit",
      ...approvals,
      "--trust-sim-root",
      join(second.simDir, SIM_FILES.roots),
      "--manifest",
      join(second.simDir, SIM_FILES.expected),
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /^error ERR_CLEANROOM_RESET: the clean room at http:\/\/127\.0\.0\.1:\d+ no longer holds the audit log this party saw \(up to entry \d+\)/,
    );
    // Nothing reached the new enclave: it still holds no contract, its log only its start.
    expect(second.enclave.health().contractDigest).toBeNull();
    expect(second.enclave.audit().entries).toHaveLength(1);

    const secondPins = [
      "--trust-sim-root",
      join(second.simDir, SIM_FILES.roots),
      "--manifest",
      join(second.simDir, SIM_FILES.expected),
    ];
    const accepted = await run("attest", "--accept-reset", ...secondPins, "--json");
    expect(json(accepted.out)).toMatchObject({ reset: "forgotten" });
    await ok("contract", "submit", ...approvals, ...secondPins);
    expect(second.enclave.health().contractDigest).not.toBeNull();
  });
});
