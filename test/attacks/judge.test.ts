/**
 * The attack corpus through the two-dataset judge (judge.ts): every query a signed party could
 * write to get the target's data out is refused, or admitted and shown by its releases on D, D'
 * and "changed" not to leak. The benign use cases must be admitted and leak-free, and the judge
 * itself must flag a deliberately leaky release.
 */

import type { Json } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DpSpec } from "../../enclave/dp/apply.js";
import type { QueryResult } from "../../enclave/sql/run.js";
import type { DpPolicy, Parameter } from "../../protocol/contract/types.js";
import { report } from "../fuzz/harness.js";
import { BENIGN, QUERY_ATTACKS } from "./corpus.js";
import {
  type AttackCase,
  type CaseResult,
  DP_READY,
  judgeCase,
  judgeDp,
  judgeReleases,
  K,
  type Lab,
  openLab,
  type Released,
  TARGET,
  VARIANTS,
  type Variant,
  verdictOk,
} from "./judge.js";

let lab: Lab;
const results: CaseResult[] = [];

beforeAll(async () => {
  lab = await openLab();
});
afterAll(() => {
  lab?.close();
  if (process.env["JUDGE_VERBOSE"]) {
    for (const r of results) console.log(`${r.outcome.padEnd(16)} [${r.cls}] ${r.name} — ${r.detail}`);
  }
  const byClass = new Map<string, Record<string, number>>();
  for (const r of results) {
    const c = byClass.get(r.cls) ?? {};
    c[r.outcome] = (c[r.outcome] ?? 0) + 1;
    byClass.set(r.cls, c);
  }
  for (const [cls, counts] of byClass) report({ suite: "attacks", name: `judge ${cls}`, ...counts });
  const total = (o: string) => results.filter((r) => r.outcome === o).length;
  report({
    suite: "attacks",
    name: "judge corpus",
    cases: results.length,
    refused: total("refused"),
    admittedNoLeak: total("admitted-no-leak"),
    leaks: total("LEAK"),
    mismatches: total("MISMATCH"),
    crashes: total("crash"),
  });
});

/** Releases of a query run as written in the plain instance (no rules, no suppression): leaky. */
async function rawReleases(sql: string, parameters: Parameter[], params: Record<string, unknown>) {
  const out = {} as Record<Variant, Released>;
  for (const v of VARIANTS) {
    await lab.plain.use(v);
    out[v] = await lab.plain.run(sql, parameters, params);
  }
  await lab.plain.use("D");
  return out;
}

describe("the judge", () => {
  const leaky: [string, string, Parameter[], Record<string, unknown>][] = [
    [
      "one value: max(amount)",
      "SELECT count(*) AS n, max(p.amount) AS top FROM advertiser_purchases p",
      [],
      {},
    ],
    [
      "a one-person group, unsuppressed",
      "SELECT p.category AS c, count(DISTINCT p.user_id) AS n FROM advertiser_purchases p GROUP BY p.category",
      [],
      {},
    ],
    [
      "membership decided by one identity (HAVING bool_or)",
      "SELECT e.arm AS a, count(DISTINCT e.user_id) AS n FROM publisher_exposures e GROUP BY e.arm HAVING bool_or(e.user_id = $who)",
      [{ name: "who", type: "VARCHAR" }],
      { who: TARGET.id },
    ],
    [
      "k met by one table only (LEFT JOIN, the purchases side is one person)",
      "SELECT e.arm AS a, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers FROM publisher_exposures e LEFT JOIN advertiser_purchases p ON p.user_id = e.user_id AND p.category = 'yachts' GROUP BY e.arm",
      [],
      {},
    ],
    [
      "a bit of the identity, in a count of many",
      "SELECT count(*) FILTER (WHERE e.user_id = $who) AS hit, count(*) AS n FROM publisher_exposures e",
      [{ name: "who", type: "VARCHAR" }],
      { who: TARGET.id },
    ],
  ];
  for (const [name, sql, parameters, params] of leaky) {
    it(`flags a leaky release: ${name}`, async () => {
      const j = await judgeReleases(
        lab.plain,
        sql,
        parameters,
        params,
        await rawReleases(sql, parameters, params),
        K,
      );
      expect(j.leaks.length, JSON.stringify(j)).toBeGreaterThan(0);
      expect(j.mismatches).toEqual([]);
    });
  }

  it("passes a k-respecting release of the same data (HAVING does the suppression)", async () => {
    const sql =
      "SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM publisher_exposures e GROUP BY e.segment HAVING count(DISTINCT e.user_id) >= 10";
    const j = await judgeReleases(lab.plain, sql, [], {}, await rawReleases(sql, [], {}), K);
    expect(j.leaks).toEqual([]);
    expect(j.differences).toBe(0);
  });

  it("passes a large group the target is part of (fed by everyone in it)", async () => {
    const sql = "SELECT e.arm AS a, count(DISTINCT e.user_id) AS n FROM publisher_exposures e GROUP BY e.arm";
    const j = await judgeReleases(lab.plain, sql, [], {}, await rawReleases(sql, [], {}), K);
    expect(j.differences).toBeGreaterThan(0);
    expect(j.leaks).toEqual([]);
  });

  it("flags pre-noise DP rows whose change exceeds the calibrated sensitivity", () => {
    const dp: DpPolicy = {
      epsilon: 1,
      budget: 10,
      groups: "private",
      maxRowsPerIdentity: 2,
      columns: [{ name: "n", kind: "count" }],
    };
    const spec: DpSpec = {
      aggregateColumns: [
        { name: "n", kind: "count" },
        { name: "__cleanroom_k0", kind: "count-distinct", release: false },
      ],
      policy: dp,
      groups: "private",
      threshold: { column: "__cleanroom_k0", minimum: K },
    };
    const result = (rows: Json[][]): QueryResult => ({
      columns: [
        { name: "c", type: "VARCHAR" },
        { name: "n", type: "BIGINT" },
      ],
      rows,
      dp: { spec, hiddenColumns: [{ name: "__cleanroom_k0", type: "BIGINT" }] },
    });
    const base = [["shoes", "40", "20"]];
    // The target adds 2 rows (m = 2): one to a group, one in a group of its own: within the bounds.
    const bounded = judgeDp(
      {
        D: result([
          ["shoes", "41", "21"],
          ["yachts", "1", "1"],
        ]),
        minus: result(base),
        changed: result(base),
      },
      dp,
    );
    expect(bounded.leaks).toEqual([]);
    // 5 rows of one person (no per-person bound), a group threshold count moved by 3.
    const unbounded = judgeDp(
      { D: result([["shoes", "45", "23"]]), minus: result(base), changed: result(base) },
      dp,
    );
    expect(unbounded.leaks.length).toBeGreaterThan(0);
  });

  it("flags a release that is not what the signed SQL computes", async () => {
    const sql = "SELECT e.arm AS a, count(DISTINCT e.user_id) AS n FROM publisher_exposures e GROUP BY e.arm";
    const released = await rawReleases(sql, [], {});
    released.D = { ...released.D, rows: released.D.rows.map((r) => [r[0]!, "1"]) };
    const j = await judgeReleases(lab.plain, sql, [], {}, released, K);
    expect(j.mismatches.length).toBeGreaterThan(0);
  });
});

function judged(c: AttackCase): void {
  const needsDp = c.kind === "custom";
  it.skipIf(needsDp && !DP_READY)(`[${c.cls}] ${c.name}`, async () => {
    const r = await judgeCase(lab, c);
    results.push(r);
    const line = `${r.outcome}: ${r.detail}`;
    expect(r.outcome, line).not.toBe("crash");
    expect(r.outcome, line).not.toBe("MISMATCH");
    if (c.expect !== "owner-risk") expect(r.outcome, line).not.toBe("LEAK");
    expect(verdictOk(c, r), `expected ${c.expect}; ${line}`).toBe(true);
  });
}

describe("attack corpus: refused, or admitted without a leak", () => {
  it("has at least 120 attacks", () => {
    expect(QUERY_ATTACKS.length).toBeGreaterThanOrEqual(120);
  });
  for (const c of QUERY_ATTACKS) judged(c);
});

describe("benign queries: admitted and leak-free", () => {
  for (const c of BENIGN) judged(c);
});
