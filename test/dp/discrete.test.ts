import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bernoulliExp, sampleDiscreteGaussian, sampleDiscreteLaplace } from "../../enclave/dp/discrete.js";
import { seededRng } from "../../enclave/dp/random.js";
import { rational } from "../../enclave/dp/rational.js";
import { enumerate } from "./helpers.js";

/** Asserts `expected` lies in [found, found + cut] (plus double-rounding slack). */
function expectWithin(found: number, cut: number, expected: number, maxCut: number) {
  expect(cut).toBeLessThan(maxCut);
  expect(expected).toBeGreaterThanOrEqual(found - 1e-12);
  expect(expected).toBeLessThanOrEqual(found + cut + 1e-12);
}

describe("Bernoulli(exp(-gamma)), exact probabilities by enumerating every random choice", () => {
  it.each([
    [0n, 1n],
    [1n, 2n],
    [1n, 1n],
    [2n, 3n],
    [5n, 2n],
    [3n, 1n],
  ])("gamma = %i/%i", (num, den) => {
    const { outcomes, cut } = enumerate((rng) => bernoulliExp(rng, rational(num, den)), 1e-12);
    expectWithin(outcomes.get(true) ?? 0, cut, Math.exp(-Number(num) / Number(den)), 1e-9);
  });
});

describe("discrete Laplace, exact small-case probabilities", () => {
  // Paths below minProb are not followed; their total mass must stay under maxCut.
  it.each([
    [1n, 1n, 1e-8, 1e-3],
    [2n, 1n, 1e-7, 1e-2],
    [1n, 2n, 1e-7, 1e-2],
  ])("scale %i/%i: P(X = x) = (1-p)/(1+p) p^|x|", (num, den, minProb, maxCut) => {
    const { outcomes, cut } = enumerate((rng) => sampleDiscreteLaplace(rng, rational(num, den)), minProb);
    const p = Math.exp(-Number(den) / Number(num));
    for (const x of [-2n, -1n, 0n, 1n, 2n]) {
      expectWithin(outcomes.get(x) ?? 0, cut, ((1 - p) / (1 + p)) * p ** Math.abs(Number(x)), maxCut);
    }
  });
});

describe("seeded sampling path", () => {
  const run = (seed: string) => {
    const rng = seededRng(seed);
    return Array.from({ length: 200 }, (_, i) =>
      i % 2 ? sampleDiscreteLaplace(rng, rational(7n, 3n)) : sampleDiscreteGaussian(rng, rational(9n, 2n)),
    );
  };

  it("is reproducible with one seed and differs with another", () => {
    expect(run("s1")).toEqual(run("s1"));
    expect(run("s1")).not.toEqual(run("s2"));
  });

  it("Bernoulli(exp(-1/3)) frequency matches over 50k seeded draws", () => {
    const rng = seededRng("freq");
    let hits = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) if (bernoulliExp(rng, rational(1n, 3n))) hits++;
    const p = Math.exp(-1 / 3);
    expect(Math.abs(hits / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
  });

  it("refuses non-positive parameters", () => {
    const rng = seededRng("x");
    expect(() => sampleDiscreteLaplace(rng, { num: 0n, den: 1n })).toThrow(
      expect.objectContaining({ code: "ERR_DP_POLICY" }),
    );
    expect(() => sampleDiscreteGaussian(rng, { num: -1n, den: 1n })).toThrow(
      expect.objectContaining({ code: "ERR_DP_POLICY" }),
    );
    expect(() => bernoulliExp(rng, { num: -1n, den: 1n })).toThrow(
      expect.objectContaining({ code: "ERR_DP_POLICY" }),
    );
  });

  it("property: outputs are bigints for any positive rational parameter", () => {
    const rng = seededRng("prop");
    const positive = fc.bigInt({ min: 1n, max: 10n ** 12n });
    fc.assert(
      fc.property(positive, positive, (num, den) => {
        const l = sampleDiscreteLaplace(rng, { num, den });
        const g = sampleDiscreteGaussian(rng, { num, den });
        return typeof l === "bigint" && typeof g === "bigint";
      }),
      { numRuns: 300 },
    );
  });
});
