/**
 * Test helpers: an Rng that enumerates every random choice (to compute a sampler's output
 * probabilities path by path) and the moments of discrete distributions.
 */
import type { Rng } from "../../enclave/dp/random.js";

class NeedChoice {
  constructor(readonly weights: number[]) {}
}

/**
 * Runs `sample` on every sequence of random choices whose probability is at least `minProb`,
 * and returns the probability of each output (summed over its paths; each path's probability
 * is a product of the choices' exact probabilities, up to double rounding) plus the total
 * probability `cut` of the sequences not followed: the true P(output) lies in [found, found + cut].
 */
export function enumerate<T>(
  sample: (rng: Rng) => T,
  minProb: number,
): { outcomes: Map<T, number>; cut: number } {
  const outcomes = new Map<T, number>();
  let cut = 0;
  const stack: { prefix: number[]; prob: number }[] = [{ prefix: [], prob: 1 }];
  while (stack.length > 0) {
    const { prefix, prob } = stack.pop()!;
    let i = 0;
    const choose = (weights: number[]): number => {
      if (i < prefix.length) return prefix[i++]!;
      throw new NeedChoice(weights);
    };
    const rng: Rng = {
      below: (n) => (n === 1n ? 0n : BigInt(choose(new Array<number>(Number(n)).fill(1 / Number(n))))),
      bernoulli: (num, den) => {
        if (num === 0n) return false;
        if (num >= den) return true;
        const p = Number(num) / Number(den);
        return choose([p, 1 - p]) === 0;
      },
    };
    try {
      const out = sample(rng);
      outcomes.set(out, (outcomes.get(out) ?? 0) + prob);
    } catch (e) {
      if (!(e instanceof NeedChoice)) throw e;
      e.weights.forEach((w, j) => {
        const p = prob * w;
        if (p >= minProb) stack.push({ prefix: [...prefix, j], prob: p });
        else cut += p;
      });
    }
  }
  return { outcomes, cut };
}

/** Mean-zero symmetric distribution on the integers with unnormalised weights w(|x|). */
export function moments(weight: (x: number) => number, support: number) {
  let z = 0;
  let m2 = 0;
  let m4 = 0;
  for (let x = -support; x <= support; x++) {
    const w = weight(Math.abs(x));
    z += w;
    m2 += w * x * x;
    m4 += w * x ** 4;
  }
  const tail = (t: number) => {
    let s = 0;
    for (let x = t; x <= support; x++) s += 2 * weight(x);
    return s / z;
  };
  const pmf = (x: number) => weight(Math.abs(x)) / z;
  return { variance: m2 / z, fourth: m4 / z, tail, pmf };
}

/** Sample statistics of n draws. */
export function sampleStats(draws: (i: number) => bigint, n: number) {
  const xs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    xs[i] = Number(draws(i));
    sum += xs[i]!;
  }
  const mean = sum / n;
  let ss = 0;
  for (const x of xs) ss += (x - mean) ** 2;
  return {
    xs,
    mean,
    variance: ss / (n - 1),
    tail: (t: number) => xs.filter((x) => Math.abs(x) >= t).length / n,
  };
}
