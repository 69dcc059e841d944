import type { Json } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyDp } from "../../enclave/dp/apply.js";
import { seededRng } from "../../enclave/dp/random.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { canonicalRows } from "../../enclave/sql/policy.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import { csvStream } from "./helpers.js";
import {
  audienceInsight,
  audienceOverlap,
  closedLoop,
  exposures,
  K,
  lastTouch,
  purchases,
  useCaseCsv,
} from "./usecases.js";

const data = useCaseCsv();

/** Ground truth computed in JS from the CSV text, independent of the engine. */
function overlapBySegment(): Map<string, { users: Set<string>; overlap: Set<string> }> {
  const buyers = new Set(
    data.purchases
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(",")[0]!),
  );
  const out = new Map<string, { users: Set<string>; overlap: Set<string> }>();
  for (const line of data.exposures.trim().split("\n").slice(1)) {
    const [id, , , , , segment] = line.split(",");
    const entry = out.get(segment!) ?? { users: new Set(), overlap: new Set() };
    entry.users.add(id!);
    if (buyers.has(id!)) entry.overlap.add(id!);
    out.set(segment!, entry);
  }
  return out;
}

// Compressed storage is loaded in small segments, each compressed as it lands.
describe.each([
  ["row storage", false, undefined],
  ["compressed storage", true, 100_000],
] as const)("use-case queries (k = 50), %s", (_name, compress, segmentBytes) => {
  let engine: SqlEngine;
  beforeAll(async () => {
    engine = await openEngine({ compress });
    const o = segmentBytes ? { segmentBytes } : {};
    const p = await ingestDataset(engine, purchases, csvStream(data.purchases, 65536), o);
    const e = await ingestDataset(engine, exposures, csvStream(data.exposures, 65536), o);
    expect(p.identity.invalidFormat).toBe(0);
    expect(e.identity.duplicates).toBeGreaterThan(0); // several exposures per person
    const stored = await engine.connection.runAndReadAll(
      `SELECT count(*) FILTER (WHERE compression <> 'Uncompressed') > 0 FROM pragma_storage_info('${exposures.id}')`,
    );
    expect(stored.getRows()).toEqual([[compress]]);
  });
  afterAll(() => engine.close());

  it("closed-loop: exposed users convert more than control users", async () => {
    const r = await runApprovedQuery(engine, closedLoop, { campaign: "spring24" });
    expect(r.columns.map((c) => c.name)).toEqual(["arm", "users", "converters", "conversion_rate"]);
    const [control, exposed] = r.rows as [[string, string, string, number], [string, string, string, number]];
    expect(control[0]).toBe("control");
    expect(exposed[0]).toBe("exposed");
    expect(exposed[3]).toBeGreaterThan(control[3]);
    expect(r.rows).toHaveLength(2); // both arms released, nothing held back
    // Canonical order: the rows come sorted by their values, with no ORDER BY in the SQL.
    expect(closedLoop.sql).not.toMatch(/ORDER BY/i);
    const none = await runApprovedQuery(engine, closedLoop, { campaign: "no-such-campaign" });
    expect(none.rows).toEqual([]);
  });

  it("audience overlap matches an independent count per segment", async () => {
    const r = await runApprovedQuery(engine, audienceOverlap, {});
    const truth = overlapBySegment();
    expect(r.rows).toEqual(
      [...truth.keys()]
        .sort()
        .map((s) => [s, String(truth.get(s)!.users.size), String(truth.get(s)!.overlap.size)]),
    );
  });

  /** The enclave's release path for a custom (DP) result, with a seeded generator: repeatable. */
  const released = async (params: Record<string, string>, seed: string) => {
    const r = await runApprovedQuery(engine, lastTouch, params);
    expect(r.dp).toBeDefined();
    const { spec, hiddenColumns } = r.dp!;
    const out = applyDp({ columns: [...r.columns, ...hiddenColumns], rows: r.rows }, spec, seededRng(seed));
    expect(out.columns.map((c) => c.name)).toEqual(["channel", "conversions", "revenue"]);
    return canonicalRows(out.rows as Json[][]);
  };
  // epsilon 1 over two noised columns; one person keeps at most 3 rows, each clamped to [0, 200].
  const dp = lastTouch.policy.dp!;
  const share = dp.epsilon / dp.columns.length;
  const countScale = dp.maxRowsPerIdentity! / share;
  const revenueScale = (dp.maxRowsPerIdentity! * dp.clamp!.upper) / share;
  // A discrete Laplace draw beyond 12 scales has probability below 1e-5.
  const BOUND = 12;

  it("last-touch attribution (custom rule, DP): every declared channel, near the exact answer", async () => {
    // Exact answer of the same SQL in plain DuckDB; each person has at most one purchase, and
    // amounts lie in [20, 200], so the contribution bounds change nothing here.
    const exactSql = lastTouch.sql
      .replace("$start", "DATE '2024-04-01'")
      .replace("$end", "DATE '2024-05-01'")
      .replace("count(*)", "count(*)::DOUBLE");
    const exact = new Map(
      (await engine.connection.runAndReadAll(exactSql))
        .getRows()
        .map((r) => [String(r[0]), [Number(r[1]), Number(r[2])]]),
    );
    expect([...exact.keys()].sort()).toEqual(["ctv", "display", "social"]);
    const rows = await released({ start: "2024-04-01", end: "2024-05-01" }, `last-touch ${compress}`);
    // Exactly the declared domain, in canonical order.
    expect(rows.map((row) => row[0])).toEqual(["ctv", "display", "social"]);
    for (const [channel, conversions, revenue] of rows) {
      const [count, sum] = exact.get(String(channel))!;
      expect(count).toBeGreaterThanOrEqual(K);
      expect(Math.abs(Number(conversions) - count!)).toBeLessThanOrEqual(BOUND * countScale);
      expect(Math.abs(Number(revenue) - sum!)).toBeLessThanOrEqual(BOUND * revenueScale);
      expect(String(revenue)).toMatch(/^-?\d+(\.\d{1,2})?$/); // rounded to the declared 2 decimals
    }
  });

  it("last-touch attribution: the declared channels even where no one bought", async () => {
    const rows = await released({ start: "2023-01-01", end: "2023-02-01" }, `empty ${compress}`);
    expect(rows.map((row) => row[0])).toEqual(["ctv", "display", "social"]);
    for (const [, conversions, revenue] of rows) {
      expect(Number(conversions)).toBeGreaterThanOrEqual(0); // a noisy count is clamped at 0
      expect(Number(conversions)).toBeLessThanOrEqual(BOUND * countScale);
      expect(Math.abs(Number(revenue))).toBeLessThanOrEqual(BOUND * revenueScale);
    }
  });

  it("audience insight suppresses the rare age band", async () => {
    const r = await runApprovedQuery(engine, audienceInsight, { category: "shoes" });
    // The rare band is not released, and not counted either.
    expect(r.rows.map((row) => row[0])).toEqual(["18-34", "35-49", "50-64"]);
    expect(r).not.toHaveProperty("groupsSuppressed");
    for (const row of r.rows) expect(Number(row[1])).toBeGreaterThanOrEqual(K);
  });
});
