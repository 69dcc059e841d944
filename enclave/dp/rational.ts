/**
 * Exact non-negative rationals on bigints, and the one place where the contract's floating-point
 * epsilons, deltas and clamp bounds become exact numbers.
 *
 * A contract number is read as the shortest decimal that round-trips to the same double
 * (`String(x)`), which is the literal its author wrote for any literal of up to 15 significant
 * digits; 0.001 is therefore exactly 1/1000, not the double's binary expansion.
 */
import { DpPolicyError } from "./errors.js";

export interface Rational {
  readonly num: bigint;
  /** Always > 0; num/den is in lowest terms. */
  readonly den: bigint;
}

/** Epsilon is accounted and calibrated in micro-epsilon: 6 decimal places. */
export const MICROS_PER_EPSILON = 1_000_000n;

export type Rounding = "up" | "down";

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

export function rational(num: bigint, den = 1n): Rational {
  if (den <= 0n) throw new DpPolicyError("rational: denominator not positive");
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

/** num/den rounded towards -infinity or +infinity. */
export function divRound(num: bigint, den: bigint, rounding: Rounding): bigint {
  const q = num / den;
  const exact = q * den === num;
  if (exact) return q;
  const negative = num < 0n !== den < 0n;
  if (rounding === "down") return negative ? q - 1n : q;
  return negative ? q : q + 1n;
}

/** floor(sqrt(n)) for n >= 0 (Newton's method on bigints). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new DpPolicyError("isqrt: negative input");
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n)))) + 1n;
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/;

/** The exact value of a decimal literal, e.g. "-12.50" or "1e-7", as a (signed) fraction. */
export function parseDecimal(text: string): Rational {
  const m = DECIMAL.exec(text);
  if (!m) throw new DpPolicyError("not a decimal number");
  const [, sign, whole, frac = "", exp = "0"] = m;
  let num = BigInt(`${sign}${whole}${frac}`);
  let den = 10n ** BigInt(frac.length);
  const e = Number(exp);
  if (!Number.isSafeInteger(e) || Math.abs(e) > 400) throw new DpPolicyError("decimal exponent out of range");
  if (e >= 0) num *= 10n ** BigInt(e);
  else den *= 10n ** BigInt(-e);
  return rational(num, den);
}

/** A finite double as the exact value of its shortest round-trip decimal. */
export function numberToRational(x: number): Rational {
  if (!Number.isFinite(x)) throw new DpPolicyError("not a finite number");
  return parseDecimal(String(x));
}

/** x * 10^places as an integer, rounded in the given direction. */
export function toFixedPoint(x: number | Rational, places: number, rounding: Rounding): bigint {
  const r = typeof x === "number" ? numberToRational(x) : x;
  return divRound(r.num * 10n ** BigInt(places), r.den, rounding);
}

/** Epsilon (or a budget) in micro-epsilon, rounded in the direction that is safe for the caller. */
export function toMicros(epsilon: number, rounding: Rounding): bigint {
  return toFixedPoint(epsilon, 6, rounding);
}

/**
 * The epsilon a mechanism is calibrated with: the contract's value rounded DOWN to a multiple of
 * 10^-6, so every noise scale derived from it (sensitivity / epsilon) is rounded UP. Refuses
 * epsilons that are not positive after rounding.
 */
export function noiseEpsilon(epsilon: number): Rational {
  if (!Number.isFinite(epsilon) || epsilon <= 0) throw new DpPolicyError("epsilon must be a positive number");
  const micros = toMicros(epsilon, "down");
  if (micros <= 0n) throw new DpPolicyError("epsilon below the 1e-6 precision");
  return rational(micros, MICROS_PER_EPSILON);
}

/** A rational as a double (for reporting and for the float-tolerant threshold bound only). */
export function toNumber(r: Rational): number {
  return Number(r.num) / Number(r.den);
}
