/**
 * Differential privacy over a query result: noise on every aggregate cell, a noisy threshold on
 * rows whose group keys come from private data, exactly the declared groups when the keys are
 * public, and the epsilon the run costs.
 *
 * The run's epsilon (rounded down to 1e-6) is split equally over the noised columns (count,
 * count-distinct, sum; sequential composition). An "avg" column is post-processing of a sum and
 * a count column of the same result, so it costs nothing more; a column with release: false is
 * noised and used (for an avg or the threshold) but left out of the output.
 */
import type { DpDomain, DpParameters } from "../../protocol/contract/types.js";
import { MAX_DOMAIN_GROUPS } from "../../protocol/contract/validate.js";
import { INTEGER_TYPES } from "../../protocol/rules/functions.js";
import { epsilonCostMicros } from "./budget.js";
import { sampleDiscreteLaplace } from "./discrete.js";
import { DpPolicyError } from "./errors.js";
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
import { noiseEpsilon, numberToRational, parseDecimal, type Rational, rational } from "./rational.js";

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
  /**
   * The contract's parameters; for "public" groups also the declared `domain` of the key columns
   * (a DpPolicy carries both): the result is then exactly one row per combination of declared
   * values, whatever the data holds.
   */
  policy: DpParameters & { domain?: DpDomain[] };
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
  /** Epsilon the budget must charge for this run (micro-epsilon, rounded up) and as a number. */
  epsilonMicros: number;
  epsilon: number;
  /** Delta of the run: the threshold's for "private" groups, otherwise 0. */
  delta: number;
}

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

/** Exact numbers DuckDB renders as JSON strings (BIGINT and wider, DECIMAL); narrower ones are numbers. */
const STRING_NUMBERS = new Set(["BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT"]);
const rendersAsString = (type: string): boolean => STRING_NUMBERS.has(type) || DECIMAL_TYPE.test(type);

/** Group-key column types: scalars only (a row struct, a list or a map would carry raw rows). */
const SCALAR_KEY =
  /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\)|VARCHAR|UUID|DATE|TIME|TIMESTAMP|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|TIMESTAMP WITH TIME ZONE|INTERVAL)$/;

/** How key cells of a column type compare: booleans, numbers (whatever their JSON kind), strings. */
type KeyKind = "boolean" | "number" | "string";

function keyKind(type: string): KeyKind {
  if (type === "BOOLEAN") return "boolean";
  if (INTEGER_TYPES.has(type) || DECIMAL_TYPE.test(type) || type === "FLOAT" || type === "DOUBLE") {
    return "number";
  }
  return "string";
}

/** A key cell as a matching key (equal numbers match as 5 and "5"); undefined: matches nothing (NULL). */
function keyOf(cell: Cell | undefined, kind: KeyKind): string | undefined {
  if (kind === "boolean") return typeof cell === "boolean" ? `b:${cell}` : undefined;
  if (kind === "string") return typeof cell === "string" ? `s:${cell}` : undefined;
  if (typeof cell !== "number" && typeof cell !== "string") return undefined;
  try {
    const r = parseDecimal(String(cell));
    return `n:${r.num}/${r.den}`;
  } catch {
    return undefined; // NaN, Infinity
  }
}

/** A declared key value as DuckDB renders it in a column of `type`; refused if it cannot be one. */
function renderKey(value: string | number | boolean, type: string): Cell {
  const misfit = () => new DpPolicyError("dp: a domain value does not fit its key column's type");
  const kind = keyKind(type);
  if (kind === "boolean" || kind === "string") {
    if (typeof value !== kind) throw misfit();
    return value;
  }
  if (typeof value !== "number" || !Number.isFinite(value)) throw misfit();
  if (type === "FLOAT" || type === "DOUBLE") return value;
  const places = placesOf(type);
  const r = numberToRational(value);
  const scaled = r.num * 10n ** BigInt(places);
  if (scaled % r.den !== 0n) throw misfit();
  return scaledToCell(scaled / r.den, places, rendersAsString(type) ? "" : 0);
}

/**
 * "public" groups: exactly one row per combination of the declared domain's values (the first
 * domain column varying slowest), whatever the data holds. A result row whose keys are such a
 * combination gives that row its aggregates; every other combination gets zero aggregates (noised
 * like any other); result rows outside the domain are dropped. Key cells are the declared values,
 * rendered as DuckDB renders the column's type. `foundOnly`: just the rows of declared groups.
 */
function publicRows(
  columns: readonly DpInputColumn[],
  rows: readonly (readonly Cell[])[],
  aggregates: readonly DpAggregateColumn[],
  domain: readonly DpDomain[] | undefined,
  foundOnly = false,
): Cell[][] {
  if (!domain || domain.length === 0) throw new DpPolicyError("dp: public groups need a declared domain");
  const aggregateNames = new Set(aggregates.map((c) => c.name));
  const entries = domain.map((d) => {
    const index = columns.findIndex((c) => c.name === d.column);
    if (index < 0 || aggregateNames.has(d.column)) {
      throw new DpPolicyError("dp: a domain column is not a group key of the result");
    }
    const { type } = columns[index]!;
    const kind = keyKind(type);
    const cells = d.values.map((v) => renderKey(v, type));
    const keys = cells.map((c) => keyOf(c, kind)!);
    if (new Set(keys).size !== keys.length) throw new DpPolicyError("dp: domain values repeat");
    return { index, kind, cells, keys };
  });
  if (new Set(entries.map((e) => e.index)).size !== entries.length) {
    throw new DpPolicyError("dp: domain column listed twice");
  }
  columns.forEach((c, i) => {
    if (!aggregateNames.has(c.name) && !entries.some((e) => e.index === i)) {
      throw new DpPolicyError("dp: every group key column needs a declared domain");
    }
  });
  const total = entries.reduce((n, e) => n * e.cells.length, 1);
  if (total > MAX_DOMAIN_GROUPS) throw new DpPolicyError("dp: domain has too many groups");

  const found = new Map<string, readonly Cell[]>();
  for (const row of rows) {
    const parts = entries.map((e) => keyOf(row[e.index], e.kind));
    if (parts.some((p) => p === undefined)) continue;
    const key = JSON.stringify(parts);
    if (!found.has(key)) found.set(key, row);
  }
  // The rows of declared groups, first per group: all a later call needs of these rows.
  if (foundOnly) return [...found.values()].map((r) => [...r]);
  const zero = zeroRow(columns, aggregates);
  const out: Cell[][] = [];
  for (let n = 0; n < total; n++) {
    const picks = new Array<number>(entries.length);
    let rest = n;
    for (let e = entries.length - 1; e >= 0; e--) {
      const size = entries[e]!.cells.length;
      picks[e] = rest % size;
      rest = Math.floor(rest / size);
    }
    const key = JSON.stringify(entries.map((e, i) => e.keys[picks[i]!]));
    const row = [...(found.get(key) ?? zero)];
    entries.forEach((e, i) => {
      row[e.index] = e.cells[picks[i]!]!;
    });
    out.push(row);
  }
  return out;
}

/** A row of zero aggregates (NULL keys and averages), cells rendered as DuckDB renders their types. */
function zeroRow(columns: readonly DpInputColumn[], aggregates: readonly DpAggregateColumn[]): Cell[] {
  const kinds = new Map(aggregates.map((c) => [c.name, c.kind]));
  return columns.map((c) => {
    const kind = kinds.get(c.name);
    if (kind === undefined || kind === "avg") return null;
    if (!INTEGER_TYPES.has(c.type) && !DECIMAL_TYPE.test(c.type)) return null;
    return scaledToCell(0n, placesOf(c.type), rendersAsString(c.type) ? "" : 0);
  });
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

/**
 * One DP release, fed the exact rows a chunk at a time, so no bound on the exact result (which
 * the data decides) is ever needed: a "private" row is noised and thresholded as it arrives and
 * only released rows are kept; a "public" result keeps only rows of declared groups (at most the
 * domain's size); a "single" result is one row.
 */
export class DpRelease<C extends DpInputColumn> {
  readonly #columns: C[];
  readonly #spec: DpSpec;
  readonly #rng: Rng;
  readonly #noised = new Map<string, Noised>();
  readonly #averages: { index: number; sum: Noised; count: Noised }[];
  readonly #threshold: { column: string; tau: bigint } | undefined;
  readonly #hidden: Set<number>;
  #released: Cell[][] = [];
  /** "public": the first row of each declared group seen; "single": the row, if any. */
  #held: (readonly Cell[])[] = [];
  #inputs = 0;

  constructor(columns: C[], spec: DpSpec, rng: Rng) {
    this.#columns = columns;
    this.#spec = spec;
    this.#rng = rng;
    const { policy, groups } = spec;
    const names = spec.aggregateColumns.map((c) => c.name);
    if (new Set(names).size !== names.length) throw new DpPolicyError("dp: aggregate column listed twice");
    const aggregateNames = new Set(names);
    for (const c of columns) {
      if (!aggregateNames.has(c.name) && !SCALAR_KEY.test(c.type)) {
        throw new DpPolicyError("dp: a group key column must have a scalar type");
      }
    }
    const noisedSpecs = spec.aggregateColumns.filter((c): c is Noised["spec"] => c.kind !== "avg");
    if (noisedSpecs.length === 0) throw new DpPolicyError("dp: no aggregate column to noise");
    const epsilon = noiseEpsilon(policy.epsilon);
    const share = rational(epsilon.num, epsilon.den * BigInt(noisedSpecs.length));
    for (const c of noisedSpecs) {
      const index = this.#indexOf(c.name);
      const places = placesOf(columns[index]!.type);
      if (c.kind !== "sum" && places !== 0)
        throw new DpPolicyError("dp: count column must have an integer type");
      const scale = laplaceScale(sensitivity(c.kind, policy, groups, places), share);
      this.#noised.set(c.name, { spec: c, index, places, scale });
    }
    this.#averages = spec.aggregateColumns.flatMap((c) => {
      if (c.kind !== "avg") return [];
      const sum = this.#noised.get(c.sum);
      const count = this.#noised.get(c.count);
      if (sum?.spec.kind !== "sum" || count?.spec.kind !== "count") {
        throw new DpPolicyError("dp: avg must name a sum and a count column");
      }
      return [{ index: this.#indexOf(c.name), sum, count }];
    });
    this.#threshold = groups === "private" ? thresholdOf(spec, this.#noised) : undefined;
    this.#hidden = new Set(
      spec.aggregateColumns.filter((c) => c.release === false).map((c) => this.#indexOf(c.name)),
    );
    // Refuse a malformed declared domain before any data is read.
    if (groups === "public") publicRows(columns, [], spec.aggregateColumns, policy.domain);
  }

  #indexOf(name: string): number {
    const i = this.#columns.findIndex((c) => c.name === name);
    if (i < 0) throw new DpPolicyError("dp: aggregate column not in the result");
    return i;
  }

  /** Released rows kept so far (private groups; the others release at `finish`). */
  get size(): number {
    return this.#released.length;
  }

  /** Feeds exact rows (with their hidden columns). */
  add(rows: readonly (readonly Cell[])[]): void {
    const { groups } = this.#spec;
    this.#inputs += rows.length;
    if (groups === "private") {
      for (const input of rows) {
        const row = this.#noise(input);
        if (row) this.#released.push(row);
      }
      return;
    }
    if (groups === "single") {
      if (this.#inputs > 1) throw new DpPolicyError("dp: single-group result has rows");
      this.#held.push(...rows);
      return;
    }
    // Public: only rows of declared groups can matter, and there are at most MAX_DOMAIN_GROUPS.
    const kept = publicRows(
      this.#columns,
      [...this.#held, ...rows],
      this.#spec.aggregateColumns,
      this.#spec.policy.domain,
      true,
    );
    this.#held = kept;
  }

  /**
   * Keeps only the first `max` released rows by `compare` over their released cells: with a
   * released-row cap, what is cut is post-processing of noisy output, so memory stays bounded.
   */
  prune(max: number, compare: (a: Cell[], b: Cell[]) => number): void {
    const visible = (r: Cell[]) => r.filter((_, i) => !this.#hidden.has(i));
    this.#released = this.#released
      .map((row) => ({ row, key: visible(row) }))
      .sort((a, b) => compare(a.key, b.key))
      .slice(0, max)
      .map((x) => x.row);
  }

  finish(): DpResult<C> {
    const { policy, groups } = this.#spec;
    if (groups === "public") {
      for (const input of publicRows(this.#columns, this.#held, this.#spec.aggregateColumns, policy.domain)) {
        this.#released.push(this.#noise(input)!);
      }
    } else if (groups === "single") {
      // One row, always (an empty result, e.g. a run that failed, is released as no data).
      this.#released.push(this.#noise(this.#held[0] ?? zeroRow(this.#columns, this.#spec.aggregateColumns))!);
    }
    const epsilonMicros = epsilonCostMicros(policy);
    const hidden = this.#hidden;
    return {
      columns: this.#columns.filter((_, i) => !hidden.has(i)),
      rows: this.#released.map((r) => r.filter((_, i) => !hidden.has(i))),
      epsilonMicros,
      epsilon: epsilonMicros / 1e6,
      delta: this.#threshold ? resolveDelta(this.#spec.delta) : 0,
    };
  }

  /** One row noised; undefined when the noisy threshold drops it. */
  #noise(input: readonly Cell[]): Cell[] | undefined {
    const row = [...input];
    const values = new Map<string, bigint>();
    for (const [name, n] of this.#noised) {
      const cell = input[n.index] ?? null;
      const value = cellToScaled(cell, n.places) + sampleDiscreteLaplace(this.#rng, n.scale);
      values.set(name, value);
      const shown = n.spec.kind === "sum" || value >= 0n ? value : 0n; // counts: clamp at 0 (post-processing)
      const like = cell ?? (rendersAsString(this.#columns[n.index]!.type) ? "" : 0);
      row[n.index] = scaledToCell(shown, n.places, like);
    }
    if (this.#threshold && values.get(this.#threshold.column)! < this.#threshold.tau) return undefined;
    for (const a of this.#averages) {
      row[a.index] = averageOf(
        values.get(a.sum.spec.name)!,
        values.get(a.count.spec.name)!,
        this.#spec.policy,
        a.sum.places,
      );
    }
    return row;
  }
}

/** DP over a whole exact result at once. */
export function applyDp<C extends DpInputColumn>(
  result: { columns: C[]; rows: readonly (readonly Cell[])[] },
  spec: DpSpec,
  rng: Rng,
): DpResult<C> {
  const release = new DpRelease(result.columns, spec, rng);
  release.add(result.rows);
  return release.finish();
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
