/**
 * How much noise a differentially private result carries, so the console can draw it instead of
 * hiding it. The enclave adds discrete Laplace noise of scale Δ / ε_c to every noised cell, where
 * the run's ε is split equally over the noised columns and Δ is the column's L1 sensitivity
 * (docs/DIFFERENTIAL-PRIVACY.md, "Mechanisms and sensitivities"). This module recomputes that
 * scale from the contract alone (never from the data) and gives the half-width of the central
 * 95 % interval of the noise: a released value lies within it of the exact one 95 % of the time.
 */
import type { DpPolicy } from "../../protocol/contract/types.js";
import type { ColumnNoise } from "./api-types.js";

/**
 * Smallest integer t with P(|Z| > t) <= 0.05 for Z discrete Laplace of scale `scale`
 * (P(Z = z) ∝ exp(-|z| / scale)): with p = exp(-1/scale), P(|Z| > t) = 2 p^(t+1) / (1 + p).
 */
export function discreteLaplaceHalfWidth95(scale: number): number {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError("noise scale must be positive");
  const p = Math.exp(-1 / scale);
  const t = Math.ceil(Math.log((0.05 * (1 + p)) / 2) / Math.log(p) - 1);
  return Math.max(0, t);
}

/**
 * The noise of each released aggregate column of a DP query, in the column's own units. An
 * "avg" column is a ratio of two noised columns: its noise has no such simple bound and is
 * reported with a null half-width (shown as "noisy", without an interval).
 */
export function dpColumnNoise(dp: DpPolicy): ColumnNoise[] {
  const noised = dp.columns.filter((c) => c.kind !== "avg");
  // Private groups without a declared distinct count get a hidden one for the threshold, which
  // takes its share of epsilon (enclave/sql/dp-rewrite.ts).
  const hidden = dp.groups === "private" && !noised.some((c) => c.kind === "count-distinct") ? 1 : 0;
  const share = dp.epsilon / (noised.length + hidden);
  const m = dp.maxRowsPerIdentity ?? 1;
  const bound = dp.clamp ? Math.max(Math.abs(dp.clamp.lower), Math.abs(dp.clamp.upper)) : Number.NaN;
  return dp.columns.map((c) => {
    if (c.kind === "avg") return { column: c.name, kind: c.kind, halfWidth95: null };
    if (c.kind === "sum") {
      // Scale in units of 10^-decimals, then back in the column's units.
      const unit = 10 ** (c.decimals ?? 0);
      const scale = (m * bound * unit) / share;
      return { column: c.name, kind: c.kind, halfWidth95: discreteLaplaceHalfWidth95(scale) / unit };
    }
    const sensitivity = c.kind === "count-distinct" && dp.groups === "single" ? 1 : m;
    return { column: c.name, kind: c.kind, halfWidth95: discreteLaplaceHalfWidth95(sensitivity / share) };
  });
}
