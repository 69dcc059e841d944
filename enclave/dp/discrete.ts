/**
 * Exact samplers of Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential
 * Privacy" (NeurIPS 2020), Algorithms 1-3. Every step is an integer comparison against a uniform
 * integer, so the output distribution is exactly the stated one: there is no floating-point
 * rounding for an attacker to exploit (Mironov 2012).
 */
import { DpPolicyError } from "./errors.js";
import type { Rng } from "./random.js";
import { isqrt, type Rational, rational } from "./rational.js";

const ONE: Rational = { num: 1n, den: 1n };

/** Algorithm 1, for gamma = num/den in [0, 1]: K is the first index where Bernoulli(gamma/K) fails. */
function bernoulliExpAtMostOne(rng: Rng, num: bigint, den: bigint): boolean {
  let k = 1n;
  while (rng.bernoulli(num, den * k)) k++;
  return k % 2n === 1n;
}

/** Bernoulli(exp(-gamma)) for a rational gamma >= 0 (Algorithm 1, with the gamma > 1 split). */
export function bernoulliExp(rng: Rng, gamma: Rational): boolean {
  if (gamma.num < 0n || gamma.den <= 0n) throw new DpPolicyError("gamma must be a non-negative rational");
  let num = gamma.num;
  const den = gamma.den;
  // exp(-gamma) = exp(-1)^floor(gamma) * exp(-(gamma - floor(gamma))): fail on the first miss.
  while (num > den) {
    if (!bernoulliExpAtMostOne(rng, 1n, 1n)) return false;
    num -= den;
  }
  return bernoulliExpAtMostOne(rng, num, den);
}

/**
 * Algorithm 2: the discrete Laplace distribution on the integers, P(x) proportional to
 * exp(-|x| / scale), for a positive rational scale.
 */
export function sampleDiscreteLaplace(rng: Rng, scale: Rational): bigint {
  if (scale.num <= 0n || scale.den <= 0n) throw new DpPolicyError("laplace scale must be positive");
  const { num: t, den: s } = rational(scale.num, scale.den);
  for (;;) {
    const u = rng.below(t);
    if (!bernoulliExp(rng, { num: u, den: t })) continue;
    let v = 0n;
    while (bernoulliExp(rng, ONE)) v++;
    const y = (u + t * v) / s;
    const negative = rng.bernoulli(1n, 2n);
    // Zero would otherwise be reached from both signs: reject one of them.
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}

/**
 * Algorithm 3: the discrete Gaussian on the integers, P(x) proportional to exp(-x^2 / (2 sigma^2)),
 * for a positive rational sigma^2: discrete Laplace proposals with scale floor(sigma) + 1, kept
 * with probability exp(-(|y| - sigma^2/t)^2 / (2 sigma^2)).
 */
export function sampleDiscreteGaussian(rng: Rng, sigma2: Rational): bigint {
  if (sigma2.num <= 0n || sigma2.den <= 0n) throw new DpPolicyError("gaussian variance must be positive");
  const { num, den } = rational(sigma2.num, sigma2.den);
  const t = isqrt(num / den) + 1n;
  const tScale: Rational = { num: t, den: 1n };
  // (|y| - num/(den t))^2 / (2 num/den) = (|y| den t - num)^2 / (2 num den t^2)
  const gammaDen = 2n * num * den * t * t;
  for (;;) {
    const y = sampleDiscreteLaplace(rng, tScale);
    const a = (y < 0n ? -y : y) * den * t - num;
    if (bernoulliExp(rng, { num: a * a, den: gammaDen })) return y;
  }
}
