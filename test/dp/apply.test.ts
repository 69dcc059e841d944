import { describe, expect, expectTypeOf, it } from "vitest";
import { applyDp, DpRelease, type DpSpec } from "../../enclave/dp/apply.js";
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
    expect(out).not.toHaveProperty("groupsSuppressed");
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

  it("public groups: exactly the declared domain, in its order, missing groups noised from zero", () => {
    const domain = [{ column: "region", values: ["west", "north", "south"] }];
    const pub: DpSpec = { ...spec, groups: "public", policy: { ...policy, domain } };
    const out = applyDp(result, pub, seededRng("pub"));
    // "east" (not declared) is dropped whatever its counts; "west" (no data) is there anyway.
    expect(out.rows.map((r) => r[0])).toEqual(["west", "north", "south"]);
    expect(out.delta).toBe(0);
    const [west, north, south] = out.rows;
    // Zero rows take the cell kinds of their column types: BIGINT and DECIMAL as strings.
    expect(west![1]).toMatch(/^\d+$/);
    expect(west![3]).toMatch(/^-?\d+\.\d{2}$/);
    expect(Math.abs(Number(west![1]))).toBeLessThan(100);
    expect(Math.abs(Number(north![1]) - 5000)).toBeLessThan(500);
    // "south" holds one person: under the private rule the threshold drops it; public keeps it.
    expect(Number(south![1])).toBeLessThan(100);
    // The released keys never depend on the data: an empty result gives the same rows.
    const empty = applyDp({ ...result, rows: [] }, pub, seededRng("empty"));
    expect(empty.rows.map((r) => r[0])).toEqual(["west", "north", "south"]);
  });

  it("public groups: the cross product of several key columns; numbers match whatever their JSON kind", () => {
    const r = {
      columns: [
        { name: "year", type: "BIGINT" },
        { name: "score", type: "DECIMAL(5,1)" },
        { name: "member", type: "BOOLEAN" },
        { name: "n", type: "BIGINT" },
      ],
      rows: [
        ["2024", "1.5", true, "900"],
        ["2024", "2.0", false, "800"],
        ["2025", "1.5", true, "700"],
        ["2023", "1.5", true, "600"], // not declared
        [null, "1.5", true, "500"], // NULL key: never a declared value
      ],
    };
    const s: DpSpec = {
      aggregateColumns: [{ name: "n", kind: "count" }],
      // epsilon 1e5: noise scale 2e-5, so counts are exact here.
      policy: {
        epsilon: 1e5,
        budget: 1e6,
        maxRowsPerIdentity: 2,
        domain: [
          { column: "year", values: [2024, 2025] },
          { column: "member", values: [true] },
          { column: "score", values: [1.5, 2] },
        ],
      },
      groups: "public",
    };
    const out = applyDp(r, s, seededRng("cross"));
    expect(out.rows).toEqual([
      ["2024", "1.5", true, "900"],
      ["2024", "2.0", true, "0"],
      ["2025", "1.5", true, "700"],
      ["2025", "2.0", true, "0"],
    ]);
  });

  it("public groups: refuses a missing or partial domain, values of the wrong type, non-scalar keys", () => {
    const rng = seededRng("pub-refuse");
    const refuse = (domain: DpSpec["policy"]["domain"], columns = result.columns) =>
      expect(() =>
        applyDp({ ...result, columns }, { ...spec, groups: "public", policy: { ...policy, domain } }, rng),
      ).toThrow(code("ERR_DP_POLICY"));
    refuse(undefined);
    refuse([{ column: "people", values: [1] }]); // an aggregate column
    refuse([{ column: "region", values: [1] }]); // a number for a VARCHAR key
    const twoKeys = [{ name: "band", type: "VARCHAR" }, ...result.columns];
    refuse([{ column: "region", values: ["north"] }], twoKeys); // "band" undeclared
    const bigint = result.columns.map((c) => (c.name === "region" ? { ...c, type: "BIGINT" } : c));
    refuse([{ column: "region", values: [1.5] }], bigint); // not an integer
    const struct = result.columns.map((c) => (c.name === "region" ? { ...c, type: "STRUCT(a INTEGER)" } : c));
    expect(() => applyDp({ ...result, columns: struct }, spec, rng)).toThrow(code("ERR_DP_POLICY"));
  });

  it("single groups keep their one row; an empty result is released as one row of no data", () => {
    const one = { ...result, rows: [result.rows[0]!] };
    const out = applyDp(one, { ...spec, groups: "single" }, seededRng("single"));
    expect(out.rows).toHaveLength(1);
    expect(out.delta).toBe(0);
    const empty = applyDp({ ...result, rows: [] }, { ...spec, groups: "single" }, seededRng("none"));
    expect(empty.rows).toHaveLength(1);
    expect(empty.rows[0]![0]).toBeNull();
    expect(Math.abs(Number(empty.rows[0]![1]))).toBeLessThan(100);
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

describe("DpRelease (streamed)", () => {
  const many = {
    columns: result.columns,
    rows: Array.from({ length: 300 }, (_, i) => [
      `r${String(i).padStart(3, "0")}`,
      "5000",
      "9000",
      "300000.50",
      33.3,
    ]),
  };
  const byText = (a: readonly unknown[], b: readonly unknown[]) =>
    JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0;

  it("fed in chunks and pruned to the cap, releases exactly the first rows of the whole release", () => {
    const whole = applyDp(many, spec, seededRng("stream")).rows.sort(byText).slice(0, 25);
    const release = new DpRelease(many.columns, spec, seededRng("stream"));
    for (let i = 0; i < many.rows.length; i += 40) {
      release.add(many.rows.slice(i, i + 40));
      if (release.size > 50) release.prune(25, byText);
    }
    release.prune(25, byText);
    expect(release.size).toBe(25);
    expect(release.finish().rows).toEqual(whole);
  });

  it("keeps only declared groups of a public result, and refuses a second row of a single one", () => {
    const domain = [{ column: "region", values: ["north", "west"] }];
    const pub = new DpRelease(
      result.columns,
      { ...spec, groups: "public", policy: { ...policy, domain } },
      seededRng("p"),
    );
    pub.add(result.rows.slice(0, 1));
    pub.add(result.rows.slice(1));
    expect(pub.finish().rows.map((r) => r[0])).toEqual(["north", "west"]);
    const single = new DpRelease(result.columns, { ...spec, groups: "single" }, seededRng("s"));
    single.add(result.rows.slice(0, 1));
    expect(() => single.add(result.rows.slice(1, 2))).toThrow(code("ERR_DP_POLICY"));
  });
});
