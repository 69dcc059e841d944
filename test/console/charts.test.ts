/**
 * What the console's charts compute and choose, without a browser: the 95 % noise interval of a
 * DP column (against the enclave's own sampler), the Wilson interval and the lift, and which chart
 * each kind of result gets.
 */
import { describe, expect, it } from "vitest";
import type { ResultView } from "../../client/console/api-types.js";
import { chooseChart } from "../../client/console/app/chart-kind.js";
import { lift, wilson } from "../../client/console/app/stats.js";
import { discreteLaplaceHalfWidth95, dpColumnNoise } from "../../client/console/noise.js";
import { sampleDiscreteLaplace } from "../../enclave/dp/discrete.js";
import { seededRng } from "../../enclave/dp/random.js";
import { rational } from "../../enclave/dp/rational.js";
import type { DpPolicy } from "../../protocol/contract/types.js";
import { lastTouch } from "../../scripts/demo/usecases.js";
import { noiseScales } from "../enclave/truth.js";

/** P(|Z| <= t) for Z discrete Laplace of `scale`, summed term by term. */
function coverage(scale: number, t: number): number {
  const p = Math.exp(-1 / scale);
  let sum = (1 - p) / (1 + p);
  for (let z = 1; z <= t; z++) sum += (2 * (1 - p) * p ** z) / (1 + p);
  return sum;
}

describe("noise intervals", () => {
  it("are the smallest integer half-widths covering 95 % of the discrete Laplace", () => {
    for (const scale of [0.3, 1, 2.5, 6, 40, 1200, 120_000]) {
      const t = discreteLaplaceHalfWidth95(scale);
      expect(coverage(scale, t), `scale ${scale}`).toBeGreaterThanOrEqual(0.95);
      if (t > 0) expect(coverage(scale, t - 1), `scale ${scale}`).toBeLessThan(0.95);
    }
    expect(() => discreteLaplaceHalfWidth95(0)).toThrow(RangeError);
  });

  it("cover 95 % of what the enclave's sampler draws", () => {
    const rng = seededRng("console-noise-interval");
    const scale = 6;
    const t = discreteLaplaceHalfWidth95(scale);
    let inside = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const z = sampleDiscreteLaplace(rng, rational(6n));
      if (z <= BigInt(t) && z >= -BigInt(t)) inside++;
    }
    expect(inside / n).toBeGreaterThan(0.935);
    expect(inside / n).toBeLessThan(0.965);
  });

  it("follow each column's scale as the enclave calibrates it", () => {
    const dp = lastTouch.policy.dp!;
    const scales = noiseScales(lastTouch);
    const noise = dpColumnNoise(dp);
    expect(noise.map((n) => n.column)).toEqual(["conversions", "revenue"]);
    expect(noise[0]!.halfWidth95).toBe(discreteLaplaceHalfWidth95(scales.get("conversions")!));
    // revenue is summed in cents (decimals 2): the interval is in the column's own units.
    expect(noise[1]!.halfWidth95).toBeCloseTo(
      discreteLaplaceHalfWidth95(scales.get("revenue")! * 100) / 100,
      6,
    );
  });

  it("count the hidden distinct-people column of private groups, and give no bound for an average", () => {
    const base: DpPolicy = {
      epsilon: 1,
      budget: 5,
      groups: "public",
      maxRowsPerIdentity: 2,
      clamp: { lower: 0, upper: 10 },
      columns: [
        { name: "n", kind: "count" },
        { name: "s", kind: "sum" },
        { name: "a", kind: "avg", sum: "s", count: "n" },
      ],
    };
    const pub = dpColumnNoise(base);
    const priv = dpColumnNoise({ ...base, groups: "private" });
    // Two noised columns, or three with the hidden one: each gets epsilon / n.
    expect(pub[0]!.halfWidth95).toBe(discreteLaplaceHalfWidth95(2 / (1 / 2)));
    expect(priv[0]!.halfWidth95).toBe(discreteLaplaceHalfWidth95(2 / (1 / 3)));
    expect(pub[2]!.halfWidth95).toBeNull();
    const single = dpColumnNoise({
      ...base,
      groups: "single",
      columns: [{ name: "people", kind: "count-distinct" }],
    });
    expect(single[0]!.halfWidth95).toBe(discreteLaplaceHalfWidth95(1));
  });
});

describe("intervals of rates", () => {
  it("Wilson's interval matches published values", () => {
    // Newcombe (1998), example: 81 of 263.
    const w = wilson(81, 263);
    expect(w.low).toBeCloseTo(0.2553, 3);
    expect(w.high).toBeCloseTo(0.3662, 3);
    const zero = wilson(0, 10);
    expect(zero.low).toBe(0);
    expect(zero.high).toBeCloseTo(0.2775, 3);
    expect(() => wilson(5, 0)).toThrow(RangeError);
  });

  it("the lift and its log-ratio interval", () => {
    const l = lift({ users: 1000, converters: 200 }, { users: 1000, converters: 100 })!;
    expect(l.value).toBeCloseTo(1, 10);
    // se = sqrt(1/200 - 1/1000 + 1/100 - 1/1000) = 0.1183
    expect(l.low).toBeCloseTo(2 * Math.exp(-1.96 * Math.sqrt(0.013)) - 1, 3);
    expect(l.high).toBeCloseTo(2 * Math.exp(1.96 * Math.sqrt(0.013)) - 1, 3);
    expect(lift({ users: 10, converters: 0 }, { users: 10, converters: 1 })).toBeUndefined();
  });
});

const view = (over: Partial<ResultView>): ResultView => ({
  id: "0".repeat(32),
  queryId: "q",
  requester: "advertiser",
  epsilon: 0,
  head: { seq: 1, hash: "0".repeat(64) },
  columns: [],
  rows: [],
  rule: "aggregation",
  k: 50,
  suppression: "",
  ...over,
});

const cols = (...names: string[]) => names.map((name) => ({ name, type: null }));

describe("which chart a result gets", () => {
  it("closed-loop shape: a lift chart, also when one arm was held back", () => {
    const both = view({
      columns: cols("arm", "users", "converters", "conversion_rate"),
      rows: [
        ["control", 600, 100, 0.1667],
        ["exposed", 1400, 560, 0.4],
      ],
    });
    expect(chooseChart(both)).toEqual({
      kind: "lift",
      arm: "arm",
      users: "users",
      converters: "converters",
      exposed: "exposed",
      control: "control",
    });
    const one = view({ ...both, rows: [["exposed", 1400, 560, 0.4]] });
    expect(chooseChart(one)).toMatchObject({ kind: "lift", control: "control" });
    // Names do not decide: other column names, the same shape.
    const renamed = view({ ...both, columns: cols("group", "people", "buyers", "rate") });
    expect(chooseChart(renamed)).toMatchObject({ kind: "lift", users: "people", converters: "buyers" });
  });

  it("overlap shape: two counts, the second within the first", () => {
    const overlap = view({
      columns: cols("segment", "publisher_users", "overlap_users"),
      rows: [
        ["news", "502", "168"],
        ["sports", "468", "149"],
      ],
    });
    expect(chooseChart(overlap)).toEqual({
      kind: "overlap",
      group: "segment",
      total: "publisher_users",
      overlap: "overlap_users",
    });
    // A second count larger than the first somewhere is no overlap.
    const not = view({
      ...overlap,
      rows: [
        ["news", 10, 20],
        ["sports", 30, 5],
      ],
    });
    expect(chooseChart(not)).toMatchObject({ kind: "bars" });
  });

  it("differentially private results: bars with their noise, never a lift or overlap", () => {
    const dp = view({
      rule: "custom",
      columns: cols("channel", "conversions", "revenue"),
      rows: [["ctv", 241, 28146.06]],
      dp: { groups: "public", epsilon: 1, noise: [] },
    });
    expect(chooseChart(dp)).toEqual({
      kind: "bars",
      group: "channel",
      values: ["conversions", "revenue"],
      noised: true,
    });
    const dpOverlap = view({ ...dp, columns: cols("segment", "a", "b"), rows: [["x", 10, 5]] });
    expect(chooseChart(dpOverlap).kind).toBe("bars");
  });

  it("distributions: one group, one count", () => {
    const insight = view({
      columns: cols("age_band", "overlap_users"),
      rows: [
        ["18-34", 120],
        ["35-49", 130],
      ],
    });
    expect(chooseChart(insight)).toEqual({
      kind: "bars",
      group: "age_band",
      values: ["overlap_users"],
      noised: false,
    });
  });

  it("nothing to draw: no rows, or no group", () => {
    expect(chooseChart(view({ columns: cols("a"), rows: [] })).kind).toBe("none");
    expect(chooseChart(view({ columns: cols("users"), rows: [[5]] })).kind).toBe("none");
  });
});
