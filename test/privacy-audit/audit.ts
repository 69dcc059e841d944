/**
 * Helpers of the privacy audit (test/privacy-audit): exact Clopper–Pearson bounds and the
 * empirical epsilon lower bound they give, worlds (engines loaded with neighbouring datasets),
 * the release step of a DP run exactly as enclave/queries.ts performs it, and a seeded shuffle.
 *
 * Empirical epsilon: for neighbouring datasets D, D' and an event E on the released output,
 * ε-DP implies P_D(E) ≤ e^ε · P_D'(E) + δ. With n runs per world, the Clopper–Pearson lower bound
 * of P_D(E) and upper bound of P_D'(E) give ε ≥ ln(lower / upper), holding with the stated
 * confidence (Bonferroni over the one-sided bounds used).
 */
import type { Json } from "@duckdb/node-api";
import { applyDp, type DpSpec } from "../../enclave/dp/apply.js";
import type { Rng } from "../../enclave/dp/random.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { canonicalRows } from "../../enclave/sql/policy.js";
import type { QueryResult } from "../../enclave/sql/run.js";
import type { Dataset } from "../../protocol/contract/types.js";
import { csvStream } from "../sql/helpers.js";

// ---------------------------------------------------------------------------------------------
// Statistics

/** ln Γ(x), x > 0 (Lanczos, g = 7, n = 9: ~15 significant digits). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const y = x - 1;
  let a = c[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) return h;
  }
  throw new Error("betaFraction did not converge");
}

/** Regularised incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaFraction(a, b, x)) / a
    : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** The q-quantile of Beta(a, b), by bisection on I_x(a, b). */
function betaQuantile(q: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (incompleteBeta(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * One-sided exact (Clopper–Pearson) bounds of a binomial proportion from `k` successes in `n`
 * trials: P(p ≥ lower) ≥ 1 − alpha and P(p ≤ upper) ≥ 1 − alpha.
 */
export function clopperPearson(k: number, n: number, alpha: number): { lower: number; upper: number } {
  if (!(n > 0) || k < 0 || k > n) throw new Error("clopperPearson: bad counts");
  return {
    lower: k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1),
    upper: k === n ? 1 : betaQuantile(1 - alpha, k + 1, n - k),
  };
}

export interface EventCounts {
  /** Name of the event, for the report. */
  name: string;
  /** Runs on D in which the event happened, out of n1. */
  k1: number;
  n1: number;
  /** Runs on D' in which the event happened, out of n2. */
  k2: number;
  n2: number;
}

export interface EpsilonBound extends EventCounts {
  /** ln(lower(P_D(E)) / upper(P_D'(E))); -Infinity when the lower bound is 0. */
  epsilon: number;
}

/**
 * Empirical ε lower bounds of a set of events, each tried in both directions (D against D' and
 * D' against D), at overall confidence `confidence`: every one-sided bound is taken at
 * alpha = (1 − confidence) / (2 · directions), so all the returned bounds hold together.
 */
export function epsilonLowerBounds(events: EventCounts[], confidence = 0.95): EpsilonBound[] {
  const directions = events.length * 2;
  const alpha = (1 - confidence) / (2 * directions);
  const out: EpsilonBound[] = [];
  for (const e of events) {
    for (const flip of [false, true]) {
      const [k1, n1, k2, n2] = flip ? [e.k2, e.n2, e.k1, e.n1] : [e.k1, e.n1, e.k2, e.n2];
      const lower = clopperPearson(k1, n1, alpha).lower;
      const upper = clopperPearson(k2, n2, alpha).upper;
      out.push({
        name: `${e.name}${flip ? " (D' vs D)" : ""}`,
        k1,
        n1,
        k2,
        n2,
        epsilon: lower === 0 ? Number.NEGATIVE_INFINITY : Math.log(lower / upper),
      });
    }
  }
  return out;
}

/** The largest bound of a set (the audit's answer), -Infinity for none. */
export const maxEpsilon = (bounds: EpsilonBound[]): number =>
  bounds.reduce((m, b) => Math.max(m, b.epsilon), Number.NEGATIVE_INFINITY);

/** P(X ≥ k) for X ~ Binomial(n, p), exactly by summation (small n). */
export function binomialTail(n: number, p: number, k: number): number {
  let total = 0;
  for (let i = k; i <= n; i++) {
    total += Math.exp(
      lnGamma(n + 1) - lnGamma(i + 1) - lnGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p),
    );
  }
  return Math.min(1, total);
}

// ---------------------------------------------------------------------------------------------
// Worlds and the release step

/** An engine with each dataset loaded from CSV text (header first), like an owner's upload. */
export async function loadWorld(
  tables: { dataset: Dataset; csv: string }[],
  options: Parameters<typeof openEngine>[0] = {},
): Promise<SqlEngine> {
  const engine = await openEngine(options);
  try {
    for (const t of tables) await ingestDataset(engine, t.dataset, csvStream(t.csv, 1 << 16));
  } catch (e) {
    engine.close();
    throw e;
  }
  return engine;
}

/**
 * The released rows of a DP run, as enclave/sql/run.ts releases them (DpRelease over the visible
 * and hidden columns, then canonical row order), over one exact result so it can be sampled many
 * times; no row cap here (test/privacy-audit/oracles.test.ts runs the enclave's own path).
 */
export function released(result: QueryResult, rng: Rng): Json[][] {
  return releasedWith(result, rng, {});
}

/** A broken release for power checks: `spec` changed, or the rows left in the order `order` gives. */
export function releasedWith(
  result: QueryResult,
  rng: Rng,
  change: { spec?: (spec: DpSpec) => DpSpec; order?: (rows: Json[][]) => Json[][] },
): Json[][] {
  const { spec, hiddenColumns } = result.dp!;
  const used = change.spec ? change.spec(spec) : spec;
  const out = applyDp({ columns: [...result.columns, ...hiddenColumns], rows: result.rows }, used, rng);
  const rows = out.rows as Json[][];
  return change.order ? change.order(rows) : canonicalRows(rows);
}

/** The DP spec with every noised column's noise scale halved (the run's epsilon doubled). */
export const halvedScale = (spec: DpSpec): DpSpec => ({
  ...spec,
  policy: { ...spec.policy, epsilon: spec.policy.epsilon * 2 },
});

/** Fisher–Yates with the test's Rng: the order of the trials of an oracle test. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Number(rng.below(BigInt(i + 1)));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A 64-hex identity like the product's hashed ones (the datasets here do not require the format). */
export const id = (n: number): string => n.toString(16).padStart(64, "0");

/** One line of the audit's report (vitest prints stdout of each test). */
export function report(line: string): void {
  console.log(`[privacy-audit] ${line}`);
}

/** A bound for the report: "ln(lower/upper) = x.xxx from k1/n1 vs k2/n2". */
export function describeBound(b: EpsilonBound): string {
  const eps = Number.isFinite(b.epsilon) ? b.epsilon.toFixed(3) : "-inf";
  return `${b.name}: ε ≥ ${eps} (events ${b.k1}/${b.n1} vs ${b.k2}/${b.n2})`;
}
