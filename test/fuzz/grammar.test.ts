/**
 * The aggregation grammar, by properties:
 * - random queries of the allowed grammar (grammar.ts) are admitted by validateContract and
 *   checkContractQueries, and, run through the enclave's path on random data, release only rows
 *   in which every table the query reads has at least k distinct identities, counted by SQL of
 *   the generator's own (in a plain DuckDB, not the locked engine), with the values the signed
 *   SQL computes;
 * - the same random queries, run with the target's values as parameters on D, D' and "changed",
 *   leak nothing by the two-dataset judge (test/attacks/judge.ts);
 * - a forbidden construct inserted anywhere into such a query is refused.
 * `npm test` runs a reduced number of cases; `npm run fuzz` the full count.
 */
import type { Json } from "@duckdb/node-api";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import type { Contract } from "../../protocol/contract/types.js";
import { validateContract } from "../../protocol/contract/validate.js";
import {
  judgeCase,
  K,
  loadEngine,
  openLab,
  Plain,
  population,
  sameCell,
  variants,
} from "../attacks/judge.js";
import { makeContract, makeParty } from "../protocol/fixtures.js";
import { aggregationQuery, contractOf } from "./grammar.js";
import { fuzz, report, SEED, size } from "./harness.js";
import { grammarRiskTarget } from "./targets.js";

/** Random data sets: small ones put many groups right at k. */
const WORLDS = [
  { seed: 21, people: 45 },
  { seed: 22, people: 90 },
  { seed: 23, people: 200 },
];
let engines: SqlEngine[] = [];
let plain: Plain;
let parties: Contract["parties"];

beforeAll(async () => {
  const pops = WORLDS.map((w) => variants(population(w.seed, w.people)).D);
  engines = await Promise.all(pops.map((p) => loadEngine(p)));
  plain = await Plain.open(Object.fromEntries(pops.map((p, i) => [`w${i}`, p])));
  parties = makeContract([await makeParty("advertiser"), await makeParty("publisher")]).parties;
});
afterAll(() => {
  for (const e of engines) e.close();
  plain?.close();
});

const keyOf = (row: Json[], n: number) => JSON.stringify(row.slice(0, n));

describe("aggregation grammar", () => {
  it("admits random grammar queries; every released row has k identities of every table", {
    timeout: 3_600_000,
  }, async () => {
    const figures = { cases: 0, rows: 0, suppressed: 0, joins: 0, withParams: 0 };
    await fc.assert(
      fc.asyncProperty(aggregationQuery, fc.nat(WORLDS.length - 1), async (g, w) => {
        const allowed = [...g.keys, ...g.parts.aggs.map((_, i) => `v${i}`)];
        const contract = contractOf(parties, g, allowed, K);
        validateContract(contract);
        await checkContractQueries(contract);
        const result = await runApprovedQuery(engines[w]!, contract.queries[0]!, g.params);
        await plain.use(`w${w}`);
        const counts = new Map(
          (await plain.run(g.countSql, g.parameters, g.params)).rows.map((r) => [keyOf(r, g.keys.length), r]),
        );
        const raw = (await plain.run(g.sql, g.parameters, g.params)).rows;
        for (const row of result.rows) {
          const c = counts.get(keyOf(row, g.keys.length));
          expect(c, `released group not in the data: ${JSON.stringify(row)} for ${g.sql}`).toBeDefined();
          g.aliases.forEach((alias, i) => {
            const n = Number(c![g.keys.length + i]);
            expect(
              n,
              `${alias} has ${n} < ${K} identities in ${JSON.stringify(row)}: ${g.sql}`,
            ).toBeGreaterThanOrEqual(K);
          });
          const same = raw.some((r) => r.length === row.length && r.every((x, i) => sameCell(x, row[i])));
          expect(same, `released ${JSON.stringify(row)} is not what ${g.sql} computes`).toBe(true);
        }
        figures.cases += 1;
        figures.rows += result.rows.length;
        figures.suppressed += raw.length - result.rows.length;
        if (g.aliases.length > 1) figures.joins += 1;
        if (g.parameters.length) figures.withParams += 1;
      }),
      { numRuns: size(60, 3_000), seed: SEED },
    );
    report({ suite: "fuzz", name: "grammar-random-queries", seed: SEED, ...figures });
    // The generator reaches both sides of k, joins and parameters.
    expect(figures.rows).toBeGreaterThan(0);
    expect(figures.suppressed).toBeGreaterThan(0);
    expect(figures.joins).toBeGreaterThan(0);
  });

  it("random grammar queries, judged on D, D' and changed with the target's values: no leak", {
    timeout: 3_600_000,
  }, async () => {
    const lab = await openLab();
    const outcomes: Record<string, number> = {};
    try {
      await fc.assert(
        fc.asyncProperty(aggregationQuery, async (g) => {
          const r = await judgeCase(lab, {
            name: "random",
            cls: "random",
            sql: g.sql,
            parameters: g.parameters,
            runs: [g.params],
            allowedColumns: [...g.keys, ...g.parts.aggs.map((_, i) => `v${i}`)],
            expect: "admitted",
          });
          outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
          expect(r.outcome, `${r.detail} — ${g.sql} ${JSON.stringify(g.params)}`).toBe("admitted-no-leak");
        }),
        // A fixed seed in `npm test` (the same queries each time); `npm run fuzz` draws new ones.
        { numRuns: size(12, 400), seed: SEED },
      );
    } finally {
      lab.close();
      report({ suite: "fuzz", name: "grammar-judged-queries", seed: SEED, ...outcomes });
    }
  });

  it("refuses every forbidden construct inserted into a valid query", { timeout: 3_600_000 }, async () => {
    const target = await grammarRiskTarget();
    const f = await fuzz(target, { numRuns: size(150, 10_000), perCaseMs: 5_000, maxHeapGrowthMiB: 128 });
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.accepted).toBe(0);
    expect(Object.keys(f.codes).every((c) => c === "ERR_CONTRACT_QUERY" || c === "ERR_CONTRACT")).toBe(true);
  });
});
