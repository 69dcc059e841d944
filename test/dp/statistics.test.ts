/**
 * Statistical checks of the exact samplers against the exact moments of the discrete
 * distributions (computed by summation), 100k seeded draws per case; tolerances are 5 standard
 * errors, so a wrong scale, a sign bias or a rounding shortcut shows up while sampling noise
 * does not.
 */
import { describe, expect, it } from "vitest";
import { sampleDiscreteGaussian, sampleDiscreteLaplace } from "../../enclave/dp/discrete.js";
import { seededRng } from "../../enclave/dp/random.js";
import { noiseEpsilon, rational } from "../../enclave/dp/rational.js";
import { moments, sampleStats } from "./helpers.js";

const N = 100_000;
const EPSILONS = [0.1, 0.5, 1, 2];

function checkAgainst(
  stats: ReturnType<typeof sampleStats>,
  theory: ReturnType<typeof moments>,
  tailAt: number,
) {
  expect(Math.abs(stats.mean)).toBeLessThan(5 * Math.sqrt(theory.variance / N));
  const varSe = Math.sqrt((theory.fourth - theory.variance ** 2) / N);
  expect(Math.abs(stats.variance - theory.variance)).toBeLessThan(5 * varSe);
  const q = theory.tail(tailAt);
  expect(Math.abs(stats.tail(tailAt) - q)).toBeLessThan(5 * Math.sqrt((q * (1 - q)) / N));
}

describe.each(EPSILONS)("epsilon %f, sensitivity 1", (epsilon) => {
  const eps = noiseEpsilon(epsilon);

  it("discrete Laplace(1/epsilon): mean, exact variance 2p/(1-p)^2, tail", () => {
    const scale = rational(eps.den, eps.num);
    const b = 1 / epsilon;
    const p = Math.exp(-epsilon);
    const theory = moments((x) => p ** x, Math.ceil(80 * b) + 50);
    expect(theory.variance).toBeCloseTo((2 * p) / (1 - p) ** 2, 6);
    const rng = seededRng(`laplace-${epsilon}`);
    checkAgainst(
      sampleStats(() => sampleDiscreteLaplace(rng, scale), N),
      theory,
      Math.ceil(2 * b),
    );
  });

  it("discrete Gaussian(sigma = 1/epsilon): mean, variance, tail", () => {
    const sigma2 = rational(eps.den * eps.den, eps.num * eps.num);
    const s2 = 1 / epsilon ** 2;
    const theory = moments((x) => Math.exp(-(x * x) / (2 * s2)), Math.ceil(40 / epsilon) + 50);
    const rng = seededRng(`gaussian-${epsilon}`);
    checkAgainst(
      sampleStats(() => sampleDiscreteGaussian(rng, sigma2), N),
      theory,
      Math.ceil(2 / epsilon),
    );
  });
});

describe("goodness of fit", () => {
  /** Pearson chi-square over |x| <= 6 plus two tail bins, against the exact pmf. */
  function chiSquare(draw: () => bigint, pmf: (x: number) => number) {
    const bins = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const x = Math.max(-7, Math.min(7, Number(draw())));
      bins.set(x, (bins.get(x) ?? 0) + 1);
    }
    let stat = 0;
    for (let x = -7; x <= 7; x++) {
      let p = pmf(x);
      if (Math.abs(x) === 7) for (let y = 8; y < 200; y++) p += pmf(y);
      const expected = N * p;
      stat += ((bins.get(x) ?? 0) - expected) ** 2 / expected;
    }
    return stat;
  }
  // 14 degrees of freedom: mean 14, sd ~5.3; 45 is beyond the 99.99th percentile.
  const LIMIT = 45;

  it("discrete Laplace scale 2 matches its pmf", () => {
    const p = Math.exp(-0.5);
    const rng = seededRng("chi-laplace");
    const stat = chiSquare(
      () => sampleDiscreteLaplace(rng, rational(2n)),
      (x) => ((1 - p) / (1 + p)) * p ** Math.abs(x),
    );
    expect(stat).toBeLessThan(LIMIT);
  });

  it("discrete Gaussian sigma^2 = 5/2 matches its pmf", () => {
    const theory = moments((x) => Math.exp(-(x * x) / 5), 200);
    const rng = seededRng("chi-gaussian");
    expect(chiSquare(() => sampleDiscreteGaussian(rng, rational(5n, 2n)), theory.pmf)).toBeLessThan(LIMIT);
  });
});
