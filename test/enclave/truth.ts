/**
 * The four use-case aggregates computed directly from the plaintext CSV in plain JS (no DuckDB),
 * with k-suppression applied per table read as docs/QUERY-RULES.md states it (the aggregation
 * rule), or before noise (last-touch, the custom rule). Rows are in the JSON result form: counts
 * as strings (BIGINT), ratios and sums as numbers.
 */
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { K, lastTouch as lastTouchQuery } from "../sql/usecases.js";

interface Exposure {
  id: string;
  ts: number;
  campaign: string;
  channel: string;
  arm: string;
  segment: string;
  age: string;
}
interface Purchase {
  id: string;
  ts: number;
  amount: number;
  category: string;
}

const time = (s: string): number => Date.parse(`${s.replace(" ", "T")}Z`);
const lines = (csv: string): string[][] =>
  csv
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.split(","));

export function parse(csv: { purchases: string; exposures: string }): { e: Exposure[]; p: Purchase[] } {
  return {
    e: lines(csv.exposures).map(([id, ts, campaign, channel, arm, segment, age]) => ({
      id: id!,
      ts: time(ts!),
      campaign: campaign!,
      channel: channel!,
      arm: arm!,
      segment: segment!,
      age: age!,
    })),
    p: lines(csv.purchases).map(([id, ts, amount, category]) => ({
      id: id!,
      ts: time(ts!),
      amount: Number(amount),
      category: category!,
    })),
  };
}

/** Every table the query reads has at least k distinct identities in the group (none fails too). */
const passes = (...counts: number[]): boolean => counts.length > 0 && counts.every((n) => n >= K);

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;

type Row = (string | number)[];
export interface Expected {
  rows: Row[];
  suppressed: number;
}

function finish<G>(
  groups: Map<string, G>,
  keep: (g: G) => boolean,
  row: (key: string, g: G) => Row,
): Expected {
  const keys = [...groups.keys()].sort();
  const kept = keys.filter((k) => keep(groups.get(k)!));
  return { rows: kept.map((k) => row(k, groups.get(k)!)), suppressed: keys.length - kept.length };
}

const DAY = 86_400_000;

export function closedLoop(d: { e: Exposure[]; p: Purchase[] }, campaign: string): Expected {
  const groups = new Map<string, { users: Set<string>; converters: Set<string> }>();
  for (const e of d.e.filter((x) => x.campaign === campaign)) {
    const g = groups.get(e.arm) ?? { users: new Set(), converters: new Set() };
    g.users.add(e.id);
    for (const p of d.p) if (p.id === e.id && p.ts >= e.ts && p.ts < e.ts + 30 * DAY) g.converters.add(p.id);
    groups.set(e.arm, g);
  }
  return finish(
    groups,
    (g) => passes(g.users.size, g.converters.size),
    (arm, g) => [
      arm,
      String(g.users.size),
      String(g.converters.size),
      round(g.converters.size / g.users.size, 4),
    ],
  );
}

export function audienceOverlap(d: { e: Exposure[]; p: Purchase[] }): Expected {
  const buyers = new Set(d.p.map((p) => p.id));
  const groups = new Map<string, { users: Set<string>; overlap: Set<string> }>();
  for (const e of d.e) {
    const g = groups.get(e.segment) ?? { users: new Set(), overlap: new Set() };
    g.users.add(e.id);
    if (buyers.has(e.id)) g.overlap.add(e.id);
    groups.set(e.segment, g);
  }
  return finish(
    groups,
    (g) => passes(g.users.size, g.overlap.size),
    (s, g) => [s, String(g.users.size), String(g.overlap.size)],
  );
}

/**
 * Last-touch attribution before noise: a custom (DP) query with "public" groups, so exactly one
 * row per declared channel (zero where no purchase is credited) and no k suppression. The demo
 * data gives each person at most one purchase, in [20, 200]: the contribution bounds
 * (maxRowsPerIdentity 3, clamp [0, 200]) change nothing, so this is also the bounded answer.
 */
export function lastTouch(d: { e: Exposure[]; p: Purchase[] }, start: string, end: string): Expected {
  const from = time(`${start} 00:00:00`);
  const to = time(`${end} 00:00:00`);
  const domain = lastTouchQuery.policy.dp!.domain![0]!.values.map(String);
  const groups = new Map(domain.map((c) => [c, { conversions: 0, revenue: 0 }]));
  for (const p of d.p.filter((x) => x.ts >= from && x.ts < to)) {
    const earlier = d.e.filter((e) => e.id === p.id && e.ts <= p.ts);
    if (earlier.length === 0) continue;
    const last = Math.max(...earlier.map((e) => e.ts));
    for (const e of earlier.filter((x) => x.ts === last)) {
      const g = groups.get(e.channel);
      if (!g) continue;
      g.conversions += 1;
      g.revenue += p.amount;
    }
  }
  return finish(
    groups,
    () => true,
    (c, g) => [c, String(g.conversions), round(g.revenue, 2)],
  );
}

/**
 * Discrete Laplace scale of each noised output column of a custom query, in the column's units:
 * sensitivity / (epsilon split equally over the noised columns), as enclave/dp/mechanisms.ts
 * calibrates it.
 */
export function noiseScales(q: ApprovedQuery): Map<string, number> {
  const dp = q.policy.dp!;
  const noised = dp.columns.filter((c) => c.kind !== "avg");
  const share = dp.epsilon / noised.length;
  const m = dp.maxRowsPerIdentity ?? 1;
  const bound = dp.clamp ? Math.max(Math.abs(dp.clamp.lower), Math.abs(dp.clamp.upper)) : 0;
  return new Map(
    noised.map((c) => {
      const sensitivity =
        c.kind === "sum" ? m * bound : c.kind === "count-distinct" && dp.groups === "single" ? 1 : m;
      return [c.name, sensitivity / share];
    }),
  );
}

/** A discrete Laplace draw beyond this many scales has probability e^-15 (about 3e-7). */
export const NOISE_BOUND = 15;

/**
 * Checks a DP result against the exact answer: the same group keys in the same (canonical) order,
 * every noised cell within NOISE_BOUND scales of the exact value, noisy counts never negative.
 */
export function expectNoisy(
  q: ApprovedQuery,
  columns: string[],
  rows: (string | number)[][],
  exact: Expected,
): void {
  const scales = noiseScales(q);
  if (rows.length !== exact.rows.length)
    throw new Error(`${rows.length} rows, expected ${exact.rows.length}`);
  rows.forEach((row, i) => {
    columns.forEach((name, j) => {
      const got = row[j]!;
      const want = exact.rows[i]![j]!;
      const scale = scales.get(name);
      if (scale === undefined) {
        if (got !== want) throw new Error(`row ${i} ${name}: ${got} is not the group key ${want}`);
        return;
      }
      const kind = q.policy.dp!.columns.find((c) => c.name === name)!.kind;
      if (kind !== "sum" && Number(got) < 0) throw new Error(`row ${i} ${name}: negative noisy count ${got}`);
      if (!(Math.abs(Number(got) - Number(want)) <= NOISE_BOUND * scale)) {
        throw new Error(`row ${i} ${name}: ${got} is not within ${NOISE_BOUND} x ${scale} of ${want}`);
      }
    });
  });
}

export function audienceInsight(d: { e: Exposure[]; p: Purchase[] }, category: string): Expected {
  const buyers = new Set(d.p.filter((p) => p.category === category).map((p) => p.id));
  const groups = new Map<string, Set<string>>();
  for (const e of d.e.filter((x) => buyers.has(x.id))) {
    const g = groups.get(e.age) ?? new Set();
    g.add(e.id);
    groups.set(e.age, g);
  }
  return finish(
    groups,
    (g) => passes(g.size),
    (a, g) => [a, String(g.size)],
  );
}
