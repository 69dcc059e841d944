/**
 * The four use-case aggregates computed directly from the plaintext CSV in plain JS (no DuckDB),
 * with k-suppression applied per table reference as docs/QUERY-RULES.md states it. Rows are in
 * the JSON result form: counts as strings (BIGINT), ratios and sums as numbers.
 */
import { K } from "../sql/usecases.js";

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

/** Every table reference's distinct identities are 0 or >= k, and at least one is >= k. */
const passes = (...counts: number[]): boolean =>
  counts.every((n) => n === 0 || n >= K) && counts.some((n) => n >= K);

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

export function lastTouch(d: { e: Exposure[]; p: Purchase[] }, start: string, end: string): Expected {
  const from = time(`${start} 00:00:00`);
  const to = time(`${end} 00:00:00`);
  const groups = new Map<string, { conversions: number; revenue: number; p: Set<string>; e: Set<string> }>();
  for (const p of d.p.filter((x) => x.ts >= from && x.ts < to)) {
    const earlier = d.e.filter((e) => e.id === p.id && e.ts <= p.ts);
    if (earlier.length === 0) continue;
    const last = Math.max(...earlier.map((e) => e.ts));
    for (const e of earlier.filter((x) => x.ts === last)) {
      const g = groups.get(e.channel) ?? { conversions: 0, revenue: 0, p: new Set(), e: new Set() };
      g.conversions += 1;
      g.revenue += p.amount;
      g.p.add(p.id);
      g.e.add(e.id);
      groups.set(e.channel, g);
    }
  }
  return finish(
    groups,
    (g) => passes(g.p.size, g.e.size),
    (c, g) => [c, String(g.conversions), round(g.revenue, 2)],
  );
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
