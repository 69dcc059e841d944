/**
 * Charts of a released result, drawn with Observable Plot as SVG: a lift chart (conversion rate
 * of each arm with its 95 % interval, and the lift), an overlap chart (each group's audience and
 * the part of it the other party also has), and bars per group (with the 95 % noise interval of
 * every noised number). Each chart has a text alternative; the table below it holds every number.
 */
import * as Plot from "@observablehq/plot";
import type { ResultView } from "../api-types.js";
import { type ChartSpec, numberOf } from "./chart-kind.js";
import { num, percent } from "./format.js";
import { type Interval, lift, wilson } from "./stats.js";

const BLUE = "#1d4f91";
const LIGHT = "#a9c4e8";
const ORANGE = "#a34700";

export interface Chart {
  /** The SVG (or a paragraph when there is nothing to draw). */
  node: Element;
  /** What the chart shows, in one or two sentences (the figure's caption). */
  caption: string;
  /** The one number to read first, when the kind has one (the lift, the overall overlap). */
  headline?: string;
}

/**
 * Plot adds a small <style> element to each SVG; the page's CSP allows no inline style, so it is
 * removed here and the same rules live in app.css (`svg.chart`). The SVG is one image to assistive
 * technology, named and described by Plot's aria-label and aria-description (its marks' groups
 * carry labels like "rule" that mean nothing to a reader).
 */
function clean(node: Element): Element {
  for (const s of Array.from(node.querySelectorAll("style"))) s.remove();
  for (const g of Array.from(node.querySelectorAll("[aria-label]"))) g.removeAttribute("aria-label");
  node.setAttribute("role", "img");
  return node;
}

function colIndex(view: ResultView, name: string): number {
  return view.columns.findIndex((c) => c.name === name);
}

function liftChart(view: ResultView, spec: Extract<ChartSpec, { kind: "lift" }>): Chart {
  const a = colIndex(view, spec.arm);
  const u = colIndex(view, spec.users);
  const c = colIndex(view, spec.converters);
  const arms = [spec.exposed, spec.control].map((arm) => {
    const row = view.rows.find((r) => String(r[a]) === arm);
    const users = numberOf(row?.[u]);
    const converters = numberOf(row?.[c]);
    const rate = users && converters !== undefined ? wilson(converters, users) : undefined;
    return { arm, users, converters, rate };
  });
  const shown = arms.filter((x): x is typeof x & { rate: Interval } => x.rate !== undefined);
  const missing = arms.filter((x) => x.rate === undefined).map((x) => x.arm);
  const [exp, ctl] = arms;
  const l =
    exp?.rate && ctl?.rate
      ? lift(
          { users: exp.users!, converters: exp.converters! },
          { users: ctl.users!, converters: ctl.converters! },
        )
      : undefined;
  const liftText = l
    ? `Lift of ${spec.exposed} over ${spec.control}: ${l.value >= 0 ? "+" : ""}${percent(l.value)} (95 % interval ${percent(l.low)} to ${percent(l.high)}).`
    : missing.length
      ? `No lift: the ${missing.join(" and ")} arm was not released (fewer than ${view.k} people).`
      : "No lift: an arm has no converters.";
  const node = Plot.plot({
    className: "chart",
    width: 720,
    height: 90 + 56 * shown.length,
    marginLeft: 90,
    marginRight: 170,
    x: {
      label: "conversion rate, with its 95 % interval →",
      tickFormat: "%",
      grid: true,
      domain: [0, Math.max(...shown.map((s) => s.rate.high)) * 1.1],
    },
    y: { label: null, domain: shown.map((s) => s.arm) },
    marks: [
      Plot.ruleY(shown, {
        y: "arm",
        x1: (d: (typeof shown)[0]) => d.rate.low,
        x2: (d: (typeof shown)[0]) => d.rate.high,
        stroke: BLUE,
        strokeWidth: 3,
      }),
      Plot.dot(shown, {
        y: "arm",
        x: (d: (typeof shown)[0]) => d.rate.value,
        r: 6,
        fill: (d: (typeof shown)[0]) => (d.arm === spec.exposed ? ORANGE : BLUE),
      }),
      Plot.text(shown, {
        y: "arm",
        x: (d: (typeof shown)[0]) => d.rate.high,
        text: (d: (typeof shown)[0]) => `${percent(d.rate.value)} of ${num(d.users)}`,
        dx: 8,
        textAnchor: "start",
        fontSize: 12,
      }),
    ],
    ariaLabel: `Conversion rate by ${spec.arm}`,
    ariaDescription: `${shown.map((s) => `${s.arm}: ${percent(s.rate.value)} (${percent(s.rate.low)} to ${percent(s.rate.high)})`).join("; ")}. ${liftText}`,
  });
  return {
    node: clean(node),
    caption: `Closed-loop measurement: ${spec.converters} per ${spec.users} in each ${spec.arm}. ${liftText}`,
    ...(l
      ? {
          headline: `Lift ${l.value >= 0 ? "+" : ""}${percent(l.value)} (95 % interval ${percent(l.low)} to ${percent(l.high)})`,
        }
      : {}),
  };
}

function overlapChart(view: ResultView, spec: Extract<ChartSpec, { kind: "overlap" }>): Chart {
  const g = colIndex(view, spec.group);
  const t = colIndex(view, spec.total);
  const o = colIndex(view, spec.overlap);
  const data = view.rows.map((r) => ({
    group: String(r[g] ?? "(null)"),
    total: numberOf(r[t]) ?? 0,
    overlap: numberOf(r[o]) ?? 0,
  }));
  const node = Plot.plot({
    className: "chart",
    width: 720,
    height: 60 + 40 * data.length,
    marginLeft: 110,
    marginRight: 180,
    x: { label: "people →", grid: true },
    y: { label: null, domain: data.map((d) => d.group) },
    marks: [
      Plot.barX(data, { y: "group", x: "total", fill: LIGHT }),
      Plot.barX(data, { y: "group", x: "overlap", fill: BLUE }),
      Plot.text(data, {
        y: "group",
        x: "total",
        text: (d: (typeof data)[0]) =>
          `${num(d.overlap)} of ${num(d.total)} (${d.total ? percent(d.overlap / d.total) : "–"})`,
        dx: 6,
        textAnchor: "start",
        fontSize: 12,
      }),
      Plot.ruleX([0]),
    ],
    ariaLabel: `${spec.overlap} within ${spec.total} by ${spec.group}`,
    ariaDescription: data.map((d) => `${d.group}: ${d.overlap} of ${d.total}`).join("; "),
  });
  const total = data.reduce((n, d) => n + d.total, 0);
  const shared = data.reduce((n, d) => n + d.overlap, 0);
  return {
    node: clean(node),
    caption: `Audience overlap: for each ${spec.group}, ${spec.total} (light) and the part also in the other party's data, ${spec.overlap} (dark).`,
    ...(total > 0
      ? {
          headline: `Overlap ${percent(shared / total)}: ${num(shared)} of ${num(total)} in the released groups`,
        }
      : {}),
  };
}

function barsChart(view: ResultView, spec: Extract<ChartSpec, { kind: "bars" }>): Chart {
  const g = colIndex(view, spec.group);
  const figure = document.createElement("div");
  figure.className = "chart-grid";
  const captions: string[] = [];
  for (const column of spec.values) {
    const i = colIndex(view, column);
    const noise = view.dp?.noise.find((n) => n.column === column);
    const hw = noise?.halfWidth95 ?? 0;
    const data = view.rows.map((r) => ({ group: String(r[g] ?? "(null)"), value: numberOf(r[i]) ?? 0 }));
    const total = data.reduce((s, d) => s + d.value, 0);
    const marks: Plot.Markish[] = [
      Plot.barY(data, { x: "group", y: "value", fill: BLUE }),
      Plot.ruleY([0]),
      Plot.text(data, {
        x: "group",
        y: (d: (typeof data)[0]) => d.value + hw,
        text: (d: (typeof data)[0]) =>
          noise
            ? `≈${num(d.value, 2)}`
            : `${num(d.value, 2)}${!view.dp && spec.values.length === 1 && total > 0 ? ` (${percent(d.value / total, 0)})` : ""}`,
        dy: -8,
        fontSize: 12,
      }),
    ];
    if (noise && hw > 0) {
      marks.push(
        Plot.ruleX(data, {
          x: "group",
          y1: (d: (typeof data)[0]) => d.value - hw,
          y2: (d: (typeof data)[0]) => d.value + hw,
          stroke: ORANGE,
          strokeWidth: 2,
        }),
        Plot.tickY(data, { x: "group", y: (d: (typeof data)[0]) => d.value - hw, stroke: ORANGE }),
        Plot.tickY(data, { x: "group", y: (d: (typeof data)[0]) => d.value + hw, stroke: ORANGE }),
      );
    }
    const node = Plot.plot({
      className: "chart",
      width: 440,
      height: 280,
      marginTop: 30,
      marginLeft: 70,
      x: { label: spec.group, domain: data.map((d) => d.group) },
      y: { label: `↑ ${column}`, grid: true },
      marks,
      ariaLabel: `${column} by ${spec.group}`,
      ariaDescription: data.map((d) => `${d.group}: ${d.value}${noise && hw ? ` ± ${hw}` : ""}`).join("; "),
    });
    figure.append(clean(node));
    if (noise) {
      captions.push(
        hw
          ? `${column} is noised: each value lies within ±${num(hw, 2)} of the exact one 95 % of the time (orange bars).`
          : `${column} is noised (a ratio of two noised numbers).`,
      );
    }
  }
  return {
    node: figure,
    caption: `${spec.values.join(", ")} by ${spec.group}.${spec.noised ? ` Differentially private (epsilon ${view.epsilon} per run). ${captions.join(" ")}` : ""}`,
  };
}

export function drawChart(view: ResultView, spec: ChartSpec): Chart {
  switch (spec.kind) {
    case "lift":
      return liftChart(view, spec);
    case "overlap":
      return overlapChart(view, spec);
    case "bars":
      return barsChart(view, spec);
    default: {
      const p = document.createElement("p");
      p.textContent = `No chart: ${spec.reason}.`;
      return { node: p, caption: "" };
    }
  }
}
