/**
 * The few statistics the charts draw, computed from released counts only: a conversion rate's
 * 95 % Wilson score interval, and the lift of an exposed arm over a control arm with the 95 %
 * interval of the ratio of two proportions (log method, Katz et al. 1978).
 */

const Z95 = 1.959963984540054;

export interface Interval {
  value: number;
  low: number;
  high: number;
}

/** Proportion `successes / trials` with its 95 % Wilson score interval. */
export function wilson(successes: number, trials: number): Interval {
  if (!(trials > 0) || successes < 0 || successes > trials)
    throw new RangeError("need 0 <= successes <= trials, trials > 0");
  const p = successes / trials;
  const z2 = Z95 * Z95;
  const centre = (p + z2 / (2 * trials)) / (1 + z2 / trials);
  const half = (Z95 * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / (1 + z2 / trials);
  return { value: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Relative lift of the exposed rate over the control rate (p1 / p0 - 1) with its 95 % interval;
 * undefined when either arm has no conversions (the ratio's interval is then unbounded).
 */
export function lift(
  exposed: { users: number; converters: number },
  control: { users: number; converters: number },
): Interval | undefined {
  const { users: n1, converters: x1 } = exposed;
  const { users: n0, converters: x0 } = control;
  if (!(n1 > 0 && n0 > 0 && x1 > 0 && x0 > 0)) return undefined;
  const rr = x1 / n1 / (x0 / n0);
  const se = Math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0);
  return { value: rr - 1, low: rr * Math.exp(-Z95 * se) - 1, high: rr * Math.exp(Z95 * se) - 1 };
}
