import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyDp } from "../../enclave/dp/apply.js";
import { boundContributions, clampRange, clampValue } from "../../enclave/dp/contribution.js";
import {
  laplaceScale,
  noisyAverage,
  noisyCount,
  partitionThreshold,
  sensitivity,
} from "../../enclave/dp/mechanisms.js";
import { seededRng } from "../../enclave/dp/random.js";
import { isqrt, noiseEpsilon, numberToRational, rational, toMicros } from "../../enclave/dp/rational.js";

const code = (c: string) => expect.objectContaining({ code: c });
const policy = { epsilon: 1, budget: 10, maxRowsPerIdentity: 3, clamp: { lower: -5, upper: 20 } };

describe("sensitivity from the policy", () => {
  it("derives L1 sensitivities from maxRowsPerIdentity and the clamp range", () => {
    expect(sensitivity("count", policy, "single")).toBe(3n);
    expect(sensitivity("count-distinct", policy, "single")).toBe(1n);
    expect(sensitivity("count-distinct", policy, "private")).toBe(3n);
    expect(sensitivity("sum", policy, "public")).toBe(60n);
    expect(sensitivity("sum", policy, "public", 2)).toBe(6000n);
  });

  it("refuses what would make a sensitivity unbounded", () => {
    const bare = { epsilon: 1, budget: 1 };
    expect(sensitivity("count-distinct", bare, "single")).toBe(1n);
    expect(() => sensitivity("count", bare, "single")).toThrow(code("ERR_DP_POLICY"));
    expect(() => sensitivity("sum", { ...bare, maxRowsPerIdentity: 1 }, "single")).toThrow(
      code("ERR_DP_POLICY"),
    );
    expect(() => sensitivity("count", { ...bare, maxRowsPerIdentity: 1.5 }, "single")).toThrow(
      code("ERR_DP_POLICY"),
    );
    expect(() =>
      sensitivity("sum", { ...bare, maxRowsPerIdentity: 1, clamp: { lower: 0, upper: 0 } }, "single"),
    ).toThrow(code("ERR_DP_POLICY"));
  });

  it("clamps fixed-point ranges inwards", () => {
    const r = clampRange({ ...policy, clamp: { lower: -0.005, upper: 1.239 } }, 2);
    expect(r).toEqual({ lower: 0n, upper: 123n, places: 2 });
    expect(clampValue(500n, r)).toBe(123n);
    expect(clampValue(-3n, r)).toBe(0n);
  });
});

describe("rational conversion is privacy-conservative", () => {
  it("reads contract numbers as their decimal literal", () => {
    expect(numberToRational(0.001)).toEqual(rational(1n, 1000n));
    expect(numberToRational(1e-7)).toEqual(rational(1n, 10_000_000n));
    expect(numberToRational(-2.5)).toEqual(rational(-5n, 2n));
    expect(() => noiseEpsilon(1e-7)).toThrow(code("ERR_DP_POLICY"));
    expect(() => noiseEpsilon(-1)).toThrow(code("ERR_DP_POLICY"));
  });

  it("property: noise epsilon <= contract epsilon <= charged epsilon, so scale >= sensitivity / epsilon", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        (eps, sens) => {
          const exact = numberToRational(eps);
          const noise = noiseEpsilon(eps);
          const charged = toMicros(eps, "up");
          // noise <= exact <= charged / 1e6, cross-multiplied in integers
          expect(noise.num * exact.den <= exact.num * noise.den).toBe(true);
          expect(exact.num * 1_000_000n <= charged * exact.den).toBe(true);
          const scale = laplaceScale(sens, noise);
          expect(scale.num * exact.num >= sens * exact.den * scale.den).toBe(true);
        },
      ),
    );
  });

  it("property: isqrt is the integer floor of the square root", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), (n) => {
        const r = isqrt(n);
        return r * r <= n && (r + 1n) * (r + 1n) > n;
      }),
    );
  });
});

describe("noisy threshold for private group keys", () => {
  it("keeps a single identity's group out with probability <= delta", () => {
    const scale = rational(3n); // count-distinct, m = 3, epsilon 1
    const tau = partitionThreshold({ scale, perGroup: 1n, maxGroups: 3n, delta: 1e-5 });
    const p = Math.exp(-1 / 3);
    // P(1 + Z >= tau) = p^(tau - 1) / (1 + p), for each of the 3 groups the identity can open
    expect((3 * p ** Number(tau - 1n)) / (1 + p)).toBeLessThanOrEqual(1e-5);
    // and tau is not needlessly large: one less would break the simpler bound p^(tau-1) <= delta/3
    expect(p ** Number(tau - 2n)).toBeGreaterThan(1e-5 / 3);
    expect(partitionThreshold({ scale, perGroup: 1n, maxGroups: 3n, delta: 1e-5, minimum: 1000 })).toBe(
      1000n,
    );
    expect(() => partitionThreshold({ scale, perGroup: 1n, maxGroups: 1n, delta: 0 })).toThrow(
      code("ERR_DP_POLICY"),
    );
  });
});

describe("helpers for single aggregates", () => {
  it("noisyAverage splits epsilon: sum and count each get half", () => {
    const rng = seededRng("avg");
    const n = 20_000;
    let ss = 0;
    let cs = 0;
    for (let i = 0; i < n; i++) {
      const r = noisyAverage(1000n, 100n, policy, rng, { groups: "single", places: 0 });
      ss += Number(r.sum - 1000n) ** 2;
      cs += Number(r.count - 100n) ** 2;
      expect(r.average).toBeGreaterThanOrEqual(-5);
      expect(r.average).toBeLessThanOrEqual(20);
    }
    const variance = (b: number) => {
      const p = Math.exp(-1 / b);
      return (2 * p) / (1 - p) ** 2;
    };
    // half of epsilon 1: sum scale 60 / 0.5 = 120, count scale 3 / 0.5 = 6
    expect(ss / n / variance(120)).toBeGreaterThan(0.9);
    expect(ss / n / variance(120)).toBeLessThan(1.1);
    expect(cs / n / variance(6)).toBeGreaterThan(0.9);
    expect(cs / n / variance(6)).toBeLessThan(1.1);
  });

  it("noisyCount uses an explicit epsilon share when given", () => {
    const rng = seededRng("share");
    const draws = Array.from({ length: 5000 }, () =>
      noisyCount(0n, policy, rng, { groups: "single", epsilon: rational(1n, 1000n) }),
    );
    expect(draws.some((d) => d > 1000n || d < -1000n)).toBe(true);
  });

  it("boundContributions keeps at most m rows per identity, chosen among that identity's rows", () => {
    const rows = [..."aaaaabbc"].map((id, i) => ({ id, i }));
    const kept = boundContributions(rows, (r) => r.id, 2n, seededRng("bound"));
    expect(kept.filter((r) => r.id === "a")).toHaveLength(2);
    expect(kept.filter((r) => r.id === "b")).toHaveLength(2);
    expect(kept.filter((r) => r.id === "c")).toHaveLength(1);
    expect(kept.map((r) => r.i)).toEqual([...kept.map((r) => r.i)].sort((x, y) => x - y));
    // over many seeds every "a" row is sometimes kept
    const seen = new Set<number>();
    for (let s = 0; s < 50; s++)
      for (const r of boundContributions(rows, (x) => x.id, 2n, seededRng(`b${s}`))) seen.add(r.i);
    expect(seen).toEqual(new Set(rows.map((r) => r.i)));
  });
});

describe("empirical differencing attack on a count query", () => {
  // Neighbouring datasets: 200 people, and the same 200 plus the victim.
  const people = Array.from({ length: 200 }, (_, i) => `p${i}`);
  const worlds = [people, [...people, "victim"]];
  const release = (world: string[], epsilon: number | undefined, rng: ReturnType<typeof seededRng>) => {
    const result = { columns: [{ name: "n", type: "BIGINT" }], rows: [[String(new Set(world).size)]] };
    if (epsilon === undefined) return Number(result.rows[0]![0]);
    const spec = {
      aggregateColumns: [{ name: "n", kind: "count-distinct" as const }],
      policy: { epsilon, budget: 1e9 },
      groups: "single" as const,
    };
    return Number(applyDp(result, spec, rng).rows[0]![0]);
  };

  /** The attacker's best threshold test "victim present iff output >= c", chosen with hindsight. */
  function bestSuccess(epsilon: number | undefined, trials: number, seed: string): number {
    const rng = seededRng(seed);
    const outs: [number, number][] = [];
    for (let i = 0; i < trials; i++) {
      const b = Number(rng.below(2n));
      outs.push([release(worlds[b]!, epsilon, rng), b]);
    }
    let best = 0;
    for (let c = 150; c <= 252; c++) {
      const right = outs.filter(([y, b]) => (y >= c ? 1 : 0) === b).length;
      best = Math.max(best, right / trials);
    }
    return best;
  }

  it("without DP the attacker is always right", () => {
    expect(bestSuccess(undefined, 200, "no-dp")).toBe(1);
  });

  it.each([0.1, 0.5, 1, 2])("with epsilon %f the best test succeeds at most e^eps/(1+e^eps)", (epsilon) => {
    const trials = 20_000;
    const bound = Math.exp(epsilon) / (1 + Math.exp(epsilon));
    const success = bestSuccess(epsilon, trials, `attack-${epsilon}`);
    const tolerance = 4 * Math.sqrt(0.25 / trials) + 0.004; // sampling error + choosing c with hindsight
    expect(success).toBeLessThanOrEqual(bound + tolerance);
    // Discrete Laplace meets the bound exactly, so the noise is not over-scaled either.
    expect(success).toBeGreaterThanOrEqual(bound - tolerance);
  });
});
