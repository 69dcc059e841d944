/**
 * Which chart a result gets, from the query's rule and the shape of its released rows (never from
 * column names): closed-loop measurement, audience overlap, a distribution or bars per group, or
 * none (a single row, or nothing released).
 *
 * - lift: an exact result with a group column whose values name an exposed (or treatment/test) arm
 *   or a control arm, and two count columns where the second never exceeds the first (people,
 *   converters); an arm that was not released is shown as missing;
 * - overlap: an exact (aggregation) result with one group column and two count columns where the
 *   second never exceeds the first (an audience, and the part of it the other party also has);
 * - bars: a group column and numbers; under differential privacy each bar carries its noise;
 * - none: nothing to compare (no rows, or no group column).
 */
import type { ResultView } from "../api-types.js";

export type ChartSpec =
  | { kind: "lift"; arm: string; users: string; converters: string; exposed: string; control: string }
  | { kind: "overlap"; group: string; total: string; overlap: string }
  | { kind: "bars"; group: string; values: string[]; noised: boolean }
  | { kind: "none"; reason: string };

const EXPOSED = /^(exposed|treatment|test|treated)$/i;
const CONTROL = /^(control|holdout|hold-out|unexposed)$/i;

/** A cell as a number when it is one (typed JSON, or a numeric text cell of a CSV-format run). */
export function numberOf(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(v)) return Number(v);
  return undefined;
}

/** Column indexes whose every non-null cell is a number (and at least one is). */
function numericColumns(view: ResultView): number[] {
  return view.columns.flatMap((_, i) => {
    const cells = view.rows.map((r) => r[i]).filter((v) => v !== null && v !== undefined);
    return cells.length > 0 && cells.every((v) => numberOf(v) !== undefined) ? [i] : [];
  });
}

function isCount(view: ResultView, i: number): boolean {
  return view.rows.every((r) => {
    const n = numberOf(r[i]);
    return n === undefined || (Number.isInteger(n) && n >= 0);
  });
}

/** Whether column `b` never exceeds column `a`, row by row. */
function within(view: ResultView, a: number, b: number): boolean {
  return view.rows.every((r) => {
    const x = numberOf(r[a]);
    const y = numberOf(r[b]);
    return x === undefined || y === undefined || y <= x;
  });
}

export function chooseChart(view: ResultView): ChartSpec {
  if (view.rows.length === 0) return { kind: "none", reason: "no row was released" };
  const numeric = numericColumns(view);
  const groups = view.columns.map((_, i) => i).filter((i) => !numeric.includes(i));
  if (groups.length === 0) return { kind: "none", reason: "a single row of numbers: see the table" };
  const name = (i: number) => view.columns[i]!.name;
  const counts = numeric.filter((i) => isCount(view, i));
  const exact = view.rule === "aggregation";

  if (exact) {
    for (const g of groups) {
      const values = view.rows.map((r) => String(r[g] ?? ""));
      const exposed = values.find((v) => EXPOSED.test(v));
      const control = values.find((v) => CONTROL.test(v));
      if (!exposed && !control) continue;
      for (const a of counts) {
        const b = counts.find((x) => x > a && within(view, a, x));
        if (b !== undefined) {
          // An arm held back (fewer than k people) is named so the chart can say it is missing.
          return {
            kind: "lift",
            arm: name(g),
            users: name(a),
            converters: name(b),
            exposed: exposed ?? "exposed",
            control: control ?? "control",
          };
        }
      }
    }
    if (
      groups.length === 1 &&
      counts.length === 2 &&
      numeric.length === 2 &&
      within(view, counts[0]!, counts[1]!)
    ) {
      return { kind: "overlap", group: name(groups[0]!), total: name(counts[0]!), overlap: name(counts[1]!) };
    }
  }
  return { kind: "bars", group: name(groups[0]!), values: numeric.map(name), noised: view.dp !== undefined };
}
