/**
 * Runaway queries. A query whose cost a parameter or literal can inflate without bound (the
 * issue's `lpad` to a width of 2×10⁸ inside an aggregate) is refused when the contract is loaded,
 * under both rules, and again on the live engine, before anything runs. A legitimately expensive
 * custom query (one person's 3 000 rows joined to themselves three ways: 2.7×10¹⁰ rows for the
 * per-person rewrite) ends with ERR_QUERY_TIMEOUT within 2× the engine's queryTimeoutMs, the
 * process's RSS stays under the engine's memory limit plus a measured margin, and the next query
 * on the same engine answers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import type { ApprovedQuery, DpPolicy, Parameter } from "../../protocol/contract/types.js";
import { crowd } from "../sql/helpers.js";
import { purchases, useCaseContract } from "../sql/usecases.js";
import { id, loadWorld, report } from "./audit.js";

const TIMEOUT_MS = 500;
const MEMORY_LIMIT_MB = 256;
/**
 * RSS allowed above the level before the run, on top of the engine's memory limit: DuckDB's
 * allocations outside its buffer manager and Node's own. Measured peak growth on a 2-core machine:
 * 14-17 MiB for the three-way self-join (it is interrupted long before it materialises much), so
 * 64 MiB leaves room without hiding a run that ignores the limit.
 */
const MARGIN_MB = 64;

function query(
  idOf: string,
  sql: string,
  policy: "aggregation" | "custom",
  parameters: Parameter[] = [],
  dp?: Partial<DpPolicy>,
): ApprovedQuery {
  return {
    id: idOf,
    sql,
    parameters,
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy:
      policy === "aggregation"
        ? { kind: "aggregation", minDistinctIdentities: 10, allowedColumns: ["m", "c", "x"] }
        : {
            kind: "custom",
            minDistinctIdentities: 10,
            allowedColumns: ["m", "c", "x"],
            dp: {
              epsilon: 1,
              budget: 10,
              groups: "single",
              maxRowsPerIdentity: 1,
              columns: [{ name: "m", kind: "count" }],
              ...dp,
            },
          },
  };
}

const P = purchases.id;
const ISSUE_SQL = `SELECT max(length(lpad(p.category, CAST($width AS INTEGER), '.'))) AS m FROM ${P} p`;
const WIDTH: Parameter[] = [{ name: "width", type: "BIGINT" }];
/** The issue's query, as each rule would have to carry it. */
const runaway: [string, ApprovedQuery][] = [
  ["aggregation: the issue's query", query("lpad-agg", ISSUE_SQL, "aggregation", WIDTH)],
  [
    "aggregation: lpad with a literal width in a dimension",
    query(
      "lpad-agg-literal",
      `SELECT lpad(p.category, 200000000, '.') AS x, count(*) AS c FROM ${P} p GROUP BY lpad(p.category, 200000000, '.')`,
      "aggregation",
    ),
  ],
  ["custom: the issue's query", query("lpad-custom", ISSUE_SQL, "custom", WIDTH)],
  [
    "custom: lpad inside a counted WHERE",
    query(
      "lpad-custom-where",
      `SELECT count(*) AS m FROM ${P} p WHERE length(lpad(p.category, CAST($width AS INTEGER), '.')) > 0`,
      "custom",
      WIDTH,
    ),
  ],
];

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

let engine: SqlEngine;
beforeAll(async () => {
  const rows = Array.from({ length: 3000 }, () => `${id(1)},a`);
  for (let i = 2; i < 60; i++) rows.push(`${id(i)},b`);
  const category = ["user_id,purchase_ts,amount,category", `${id(1)},2024-01-01 00:00:00,1.00,shoes`];
  engine = await loadWorld(
    [
      { dataset: crowd, csv: `id,g\n${rows.join("\n")}\n` },
      { dataset: purchases, csv: `${category.join("\n")}\n` },
    ],
    { queryTimeoutMs: TIMEOUT_MS, memoryLimit: `${MEMORY_LIMIT_MB}MB` },
  );
});
afterAll(() => engine?.close());

describe("runaway queries", () => {
  for (const [name, q] of runaway) {
    it(`${name}: refused at contract load and on the live engine`, async () => {
      const load = await checkContractQueries({ ...useCaseContract, queries: [q] }).catch((e: unknown) => e);
      expect(load).toMatchObject({ code: "ERR_CONTRACT_QUERY", queryId: q.id });
      report(`${name}: refused at load: ${(load as { reason: string }).reason}`);
      if (/lpad-(agg-literal|custom)/.test(q.id)) expect((load as { reason: string }).reason).toMatch(/lpad/);
      const before = rssMb();
      const started = performance.now();
      const params = q.parameters.length ? { width: 200_000_000 } : {};
      await expect(runApprovedQuery(engine, q, params)).rejects.toMatchObject({
        code: "ERR_CONTRACT_QUERY",
      });
      // Refused while checking, so nothing was allocated for 2×10⁸-character strings.
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS);
      expect(rssMb() - before).toBeLessThan(MARGIN_MB);
    });
  }

  it("a three-way self-join of one person's 3 000 rows ends with ERR_QUERY_TIMEOUT, within memory, and the engine answers next", async () => {
    const slow = query(
      "self-join",
      "SELECT count(*) AS m FROM crowd a JOIN crowd b ON b.id = a.id JOIN crowd c ON c.id = a.id",
      "custom",
    );
    const before = rssMb();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb());
    }, 5);
    try {
      // The first run plans the query (the per-person rewrite, prepared on its own connection);
      // the second reuses the plan, so its time is the run's alone.
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        const started = performance.now();
        await expect(runApprovedQuery(engine, slow, {})).rejects.toMatchObject({ code: "ERR_QUERY_TIMEOUT" });
        times.push(performance.now() - started);
      }
      peak = Math.max(peak, rssMb());
      report(
        `self-join: ERR_QUERY_TIMEOUT after ${times.map((t) => t.toFixed(0)).join(" ms (with planning), ")} ms ` +
          `(queryTimeoutMs ${TIMEOUT_MS}); RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB ` +
          `(+${(peak - before).toFixed(0)} MiB; limit ${MEMORY_LIMIT_MB} MiB + margin ${MARGIN_MB} MiB)`,
      );
      expect(times[0]).toBeLessThan(4 * TIMEOUT_MS);
      expect(times[1]).toBeLessThan(2 * TIMEOUT_MS);
      expect(peak - before).toBeLessThan(MEMORY_LIMIT_MB + MARGIN_MB);
    } finally {
      clearInterval(sampler);
    }
    // The same engine answers the next query (a custom count over the same table).
    const next = query("next", "SELECT count(*) AS m FROM crowd a WHERE a.g = 'b'", "custom", [], {
      epsilon: 1000,
    });
    const started = performance.now();
    const result = await runApprovedQuery(engine, next, {});
    expect(result.rows).toEqual([["58"]]);
    report(`next query on the same engine: ${(performance.now() - started).toFixed(0)} ms, exact count 58`);
  });
});
