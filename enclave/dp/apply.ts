/**
 * Differential privacy over a k-thresholded query result: noise on every aggregate cell, a noisy
 * threshold on rows whose group keys come from private data, and the epsilon the run costs.
 *
 * The run's epsilon (rounded down to 1e-6) is split equally over the noised columns (count,
 * count-distinct, sum; sequential composition). An "avg" column is post-processing of a sum and
 * a count column of the same result, so it costs nothing more; a column with release: false is
 * noised and used (for an avg or the threshold) but left out of the output.
 */
import type { DpParameters } from "../../protocol/contract/types.js";
import { sampleDiscreteLaplace } from "./discrete.js";
import { DpPolicyError } from "./errors.js";
import { epsilonCostMicros } from "./ledger.js";
import {
  averageOf,
  type GroupKeys,
  laplaceScale,
  maxGroupsOf,
  type NoisedKind,
  partitionThreshold,
  perGroupContribution,
  resolveDelta,
  sensitivity,
} from "./mechanisms.js";
import type { Rng } from "./random.js";
import { noiseEpsilon, parseDecimal, type Rational, rational } from "./rational.js";

/** A JSON cell as the SQL layer renders it (DuckDB renders BIGINT, HUGEINT, DECIMAL as strings). */
export type Cell = null | boolean | number | string | Cell[] | { [key: string]: Cell };

export interface DpInputColumn {
  name: string;
  /** DuckDB type name; counts and sums must be integer or DECIMAL(p,s) (s gives the fixed point). */
  type: string;
}

export type DpAggregateColumn =
  | { name: string; kind: NoisedKind; release?: boolean }
  /** AVG = noisy `sum` / noisy `count`, both columns of this result listed as "sum" and "count". */
  | { name: string; kind: "avg"; sum: string; count: string; release?: boolean };

export interface DpSpec {
  /** Every aggregate output column; any other column is a group key and passes unchanged. */
  aggregateColumns: DpAggregateColumn[];
  policy: DpParameters;
  groups: GroupKeys;
  /**
   * "private" groups only: the count or count-distinct column the noisy threshold reads (default:
   * the first count-distinct column, else the first count column), and a floor for tau (e.g. k).
   */
  threshold?: { column?: string; minimum?: number };
  /** Delta of the noisy threshold; DEFAULT_DELTA when the contract declares none. */
  delta?: number;
}

export interface DpResult<C extends DpInputColumn> {
  columns: C[];
  rows: Cell[][];
  /** Passed through from the input unchanged (see docs/DIFFERENTIAL-PRIVACY.md before releasing it). */
  groupsSuppressed: number;
  /** Epsilon the ledger must charge for this run (micro-epsilon, rounded up) and as a number. */
  epsilonMicros: number;
  epsilon: number;
  /** Delta of the run: the threshold's for "private" groups, otherwise 0. */
  delta: number;
  /** Rows the noisy threshold dropped. An exact, data-dependent count: keep it inside the enclave. */
  thresholdDropped: number;
}

const INTEGER_TYPES = new Set([
  "TINYINT",
  "SMALLINT",
  "INTEGER",
  "BIGINT",
  "HUGEINT",
  "UTINYINT",
  "USMALLINT",
  "UINTEGER",
  "UBIGINT",
  "UHUGEINT",
]);
const DECIMAL_TYPE = /^DECIMAL\(\d+,\s*(\d+)\)$/;

/** Decimal places of an exact numeric column type; floating types are refused (their sums are inexact). */
function placesOf(type: string): number {
  if (INTEGER_TYPES.has(type)) return 0;
  const m = DECIMAL_TYPE.exec(type);
  if (m) return Number(m[1]);
  throw new DpPolicyError("dp: aggregate column must have an integer or DECIMAL type");
}

/** A cell of an exact numeric column as an integer in units of 10^-places; NULL (empty SUM) is 0. */
function cellToScaled(cell: Cell, places: number): bigint {
  if (cell === null) return 0n;
  if (typeof cell !== "string" && typeof cell !== "number")
    throw new DpPolicyError("dp: aggregate cell not numeric");
  const r = parseDecimal(String(cell));
  const scaled = r.num * 10n ** BigInt(places);
  if (scaled % r.den !== 0n) throw new DpPolicyError("dp: aggregate cell finer than its type");
  return scaled / r.den;
}

/** Back to the cell's JSON kind: strings stay decimal strings with `places` decimals, numbers numbers. */
function scaledToCell(value: bigint, places: number, like: Cell): Cell {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(places + 1, "0");
  const text = `${negative ? "-" : ""}${places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits}`;
  if (typeof like === "string") return text;
  const n = Number(text);
  return places === 0 && !Number.isSafeInteger(n) ? text : n;
}

interface Noised {
  spec: DpAggregateColumn & { kind: NoisedKind };
  index: number;
  places: number;
  scale: Rational;
}

export function applyDp<C extends DpInputColumn>(
  result: { columns: C[]; rows: readonly (readonly Cell[])[]; groupsSuppressed?: number },
  spec: DpSpec,
  rng: Rng,
): DpResult<C> {
  const { policy, groups } = spec;
  const indexOf = (name: string): number => {
    const i = result.columns.findIndex((c) => c.name === name);
    if (i < 0) throw new DpPolicyError("dp: aggregate column not in the result");
    return i;
  };
  const names = spec.aggregateColumns.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new DpPolicyError("dp: aggregate column listed twice");
  if (groups === "single" && result.rows.length > 1)
    throw new DpPolicyError("dp: single-group result has rows");

  const noisedSpecs = spec.aggregateColumns.filter((c): c is Noised["spec"] => c.kind !== "avg");
  if (noisedSpecs.length === 0) throw new DpPolicyError("dp: no aggregate column to noise");
  const epsilon = noiseEpsilon(policy.epsilon);
  const share = rational(epsilon.num, epsilon.den * BigInt(noisedSpecs.length));
  const noised = new Map<string, Noised>();
  for (const c of noisedSpecs) {
    const index = indexOf(c.name);
    const places = placesOf(result.columns[index]!.type);
    if (c.kind !== "sum" && places !== 0)
      throw new DpPolicyError("dp: count column must have an integer type");
    const scale = laplaceScale(sensitivity(c.kind, policy, groups, places), share);
    noised.set(c.name, { spec: c, index, places, scale });
  }
  const averages = spec.aggregateColumns.flatMap((c) => {
    if (c.kind !== "avg") return [];
    const sum = noised.get(c.sum);
    const count = noised.get(c.count);
    if (sum?.spec.kind !== "sum" || count?.spec.kind !== "count") {
      throw new DpPolicyError("dp: avg must name a sum and a count column");
    }
    return [{ index: indexOf(c.name), sum, count }];
  });

  const threshold = groups === "private" ? thresholdOf(spec, noised) : undefined;
  const delta = threshold ? resolveDelta(spec.delta) : 0;

  const rows: Cell[][] = [];
  for (const input of result.rows) {
    const row = [...input];
    const values = new Map<string, bigint>();
    for (const [name, n] of noised) {
      const value = cellToScaled(input[n.index]!, n.places) + sampleDiscreteLaplace(rng, n.scale);
      values.set(name, value);
      const shown = n.spec.kind === "sum" || value >= 0n ? value : 0n; // counts: clamp at 0 (post-processing)
      row[n.index] = scaledToCell(shown, n.places, input[n.index]!);
    }
    if (threshold && values.get(threshold.column)! < threshold.tau) continue;
    for (const a of averages) {
      row[a.index] = averageOf(
        values.get(a.sum.spec.name)!,
        values.get(a.count.spec.name)!,
        policy,
        a.sum.places,
      );
    }
    rows.push(row);
  }

  const hidden = new Set(
    spec.aggregateColumns.filter((c) => c.release === false).map((c) => indexOf(c.name)),
  );
  const epsilonMicros = epsilonCostMicros(policy);
  return {
    columns: result.columns.filter((_, i) => !hidden.has(i)),
    rows: rows.map((r) => r.filter((_, i) => !hidden.has(i))),
    groupsSuppressed: result.groupsSuppressed ?? 0,
    epsilonMicros,
    epsilon: epsilonMicros / 1e6,
    delta,
    thresholdDropped: result.rows.length - rows.length,
  };
}

function thresholdOf(spec: DpSpec, noised: Map<string, Noised>): { column: string; tau: bigint } {
  const candidates = [...noised.values()];
  const name =
    spec.threshold?.column ??
    (
      candidates.find((n) => n.spec.kind === "count-distinct") ??
      candidates.find((n) => n.spec.kind === "count")
    )?.spec.name;
  const chosen = name === undefined ? undefined : noised.get(name);
  if (!chosen || chosen.spec.kind === "sum")
    throw new DpPolicyError("dp: private groups need a count column to threshold");
  const tau = partitionThreshold({
    scale: chosen.scale,
    perGroup: perGroupContribution(chosen.spec.kind, spec.policy),
    maxGroups: maxGroupsOf(spec.policy),
    delta: resolveDelta(spec.delta),
    minimum: spec.threshold?.minimum,
  });
  return { column: chosen.spec.name, tau };
}
