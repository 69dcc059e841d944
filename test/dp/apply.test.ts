import { describe, expect, expectTypeOf, it } from "vitest";
import { applyDp, type DpSpec } from "../../enclave/dp/apply.js";
import { seededRng } from "../../enclave/dp/random.js";
import type { QueryResult } from "../../enclave/sql/run.js";

const code = (c: string) => expect.objectContaining({ code: c });
const policy = { epsilon: 1, budget: 10, maxRowsPerIdentity: 2, clamp: { lower: 0, upper: 100 } };

const result = {
  columns: [
    { name: "region", type: "VARCHAR" },
    { name: "people", type: "BIGINT" },
    { name: "purchases", type: "BIGINT" },
    { name: "spend", type: "DECIMAL(38,2)" },
    { name: "avg_spend", type: "DOUBLE" },
  ],
  rows: [
    ["north", "5000", "9000", "300000.50", 33.3],
    ["south", "1", "2", "150.00", 75],
    ["east", "4000", 7000, null, null],
  ],
  groupsSuppressed: 2,
};

const spec: DpSpec = {
  aggregateColumns: [
    { name: "people", kind: "count-distinct" },
    { name: "purchases", kind: "count" },
    { name: "spend", kind: "sum" },
    { name: "avg_spend", kind: "avg", sum: "spend", count: "purchases" },
  ],
  policy,
  groups: "private",
};

describe("applyDp", () => {
  it("accepts the SQL layer's QueryResult as it is", () => {
    expectTypeOf<QueryResult>().toExtend<Parameters<typeof applyDp>[0]>();
  });

  it("noises every aggregate cell, keeps cell kinds, drops the small private group", () => {
    const out = applyDp(result, spec, seededRng("apply"));
    expect(out.columns).toEqual(result.columns);
    expect(out.rows.map((r) => r[0])).toEqual(["north", "east"]);
    expect(out.thresholdDropped).toBe(1);
    expect(out.groupsSuppressed).toBe(2);
    const [north, east] = out.rows;
    expect(north![1]).toMatch(/^\d+$/);
    expect(typeof east![2]).toBe("number");
    expect(Number.isInteger(east![2])).toBe(true);
    expect(north![3]).toMatch(/^-?\d+\.\d{2}$/);
    expect(Math.abs(Number(north![1]) - 5000)).toBeLessThan(500);
    expect(north![4]).toBeCloseTo(Number(north![3]) / Number(north![2]), 6);
    expect(out.epsilonMicros).toBe(1_000_000);
    expect(out.epsilon).toBe(1);
    expect(out.delta).toBe(1e-9);
  });

  it("is not the identity: two runs differ, and the same seed reproduces", () => {
    const a = applyDp(result, spec, seededRng("x"));
    expect(applyDp(result, spec, seededRng("x"))).toEqual(a);
    expect(applyDp(result, spec, seededRng("y")).rows).not.toEqual(a.rows);
    const north = a.rows[0]!.slice(1, 4).map(Number);
    expect(north).not.toEqual([5000, 9000, 300000.5]);
  });

  it("splits epsilon over the noised columns: each gets epsilon / 3 here", () => {
    const single = {
      columns: [
        { name: "n", type: "BIGINT" },
        { name: "rows", type: "BIGINT" },
        { name: "total", type: "HUGEINT" },
      ],
      rows: [["0", "0", "0"]],
    };
    const s: DpSpec = {
      aggregateColumns: [
        { name: "n", kind: "count-distinct" },
        { name: "rows", kind: "count" },
        { name: "total", kind: "sum" },
      ],
      policy,
      groups: "single",
    };
    const rng = seededRng("split");
    const n = 6000;
    const sq = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const row = applyDp(single, s, rng).rows[0]!;
      // Counts are clamped at 0 on output: check their mean; the sum is not clamped: its variance.
      sq[2]! += Number(row[2]) ** 2;
      sq[0]! += Number(row[0]);
      sq[1]! += Number(row[1]);
    }
    const variance = (b: number) => {
      const p = Math.exp(-1 / b);
      return (2 * p) / (1 - p) ** 2;
    };
    // sum: sensitivity m * 100 = 200, epsilon 1/3 -> scale 600
    expect(sq[2]! / n / variance(600)).toBeGreaterThan(0.9);
    expect(sq[2]! / n / variance(600)).toBeLessThan(1.1);
    // clamped counts: E[max(X, 0)] = sum_{x>=1} x P(x) = p / ((1 - p)(1 + p)) for scale b
    const positiveMean = (b: number) => {
      const p = Math.exp(-1 / b);
      return p / ((1 - p) * (1 + p));
    };
    expect(sq[0]! / n / positiveMean(3)).toBeGreaterThan(0.9); // count-distinct: 1 / (1/3)
    expect(sq[0]! / n / positiveMean(3)).toBeLessThan(1.1);
    expect(sq[1]! / n / positiveMean(6)).toBeGreaterThan(0.9); // count: 2 / (1/3)
    expect(sq[1]! / n / positiveMean(6)).toBeLessThan(1.1);
  });

  it("drops columns marked release: false after using them", () => {
    const s: DpSpec = {
      ...spec,
      aggregateColumns: spec.aggregateColumns.map((c) =>
        c.name === "people" ? { ...c, release: false } : c,
      ),
      threshold: { column: "people", minimum: 10 },
    };
    const out = applyDp(result, s, seededRng("hidden"));
    expect(out.columns.map((c) => c.name)).toEqual(["region", "purchases", "spend", "avg_spend"]);
    expect(out.rows.every((r) => r.length === 4)).toBe(true);
  });

  it("public and single groups keep every row", () => {
    const out = applyDp(result, { ...spec, groups: "public" }, seededRng("pub"));
    expect(out.rows).toHaveLength(3);
    expect(out.delta).toBe(0);
  });

  it("refuses specs it cannot make private", () => {
    const rng = seededRng("refuse");
    const refuse = (r: typeof result, s: DpSpec) =>
      expect(() => applyDp(r, s, rng)).toThrow(code("ERR_DP_POLICY"));
    const doubleSum = {
      ...result,
      columns: result.columns.map((c) => (c.name === "spend" ? { ...c, type: "DOUBLE" } : c)),
    };
    refuse(doubleSum, spec);
    refuse(result, { ...spec, groups: "single" });
    refuse(result, { ...spec, policy: { epsilon: 1, budget: 1 } });
    refuse(result, { ...spec, aggregateColumns: [{ name: "spend", kind: "sum" }] });
    refuse(result, { ...spec, aggregateColumns: [{ name: "nope", kind: "count" }] });
    refuse(result, {
      ...spec,
      aggregateColumns: [...spec.aggregateColumns, { name: "people", kind: "count" }],
    });
    refuse(result, {
      ...spec,
      aggregateColumns: [
        { name: "avg_spend", kind: "avg", sum: "purchases", count: "people" },
        ...spec.aggregateColumns.slice(0, 3),
      ],
    });
    refuse(result, { ...spec, delta: 2 });
    refuse(result, { ...spec, policy: { ...policy, epsilon: 0 } });
  });
});
