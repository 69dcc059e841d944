/**
 * The demo collaboration: an advertiser's purchases and a publisher's ad exposures, keyed by
 * sha256-hex hashed emails, the four approved use-case queries (k = 50), and a seeded generator
 * of realistic data at any size (the demo, the benchmarks and the tests share it).
 */
import { createHash } from "node:crypto";
import {
  audienceOverlapQuery,
  exposuresDataset,
  lastTouchQuery,
  purchasesDataset,
  TEMPLATE_K,
} from "../../client/sdk/contract-template.js";
import type { ApprovedQuery, Contract, Dataset, Party } from "../../protocol/contract/types.js";

/** The demo's k, the contract template's. */
export const K = TEMPLATE_K;

/** The template's purchases, owned by the advertiser. */
export const purchases: Dataset = purchasesDataset("advertiser");

/** The template's exposures, owned by the publisher, with each person's age band. */
export const exposures: Dataset = exposuresDataset("publisher", { age_band: "VARCHAR" });

const aggregation = (allowedColumns: string[]) => ({
  kind: "aggregation" as const,
  minDistinctIdentities: K,
  allowedColumns,
});

/** Closed-loop measurement: conversion within 30 days of exposure, exposed arm vs control arm. */
export const closedLoop: ApprovedQuery = {
  id: "closed-loop",
  sql: `SELECT e.arm AS arm,
       count(DISTINCT e.user_id) AS users,
       count(DISTINCT p.user_id) AS converters,
       round(count(DISTINCT p.user_id) / count(DISTINCT e.user_id), 4) AS conversion_rate
FROM publisher_exposures e
LEFT JOIN advertiser_purchases p
  ON p.user_id = e.user_id AND p.purchase_ts >= e.exposure_ts
  AND p.purchase_ts < e.exposure_ts + INTERVAL 30 DAY
WHERE e.campaign = $campaign
GROUP BY e.arm`,
  parameters: [{ name: "campaign", type: "VARCHAR" }],
  runners: ["advertiser", "publisher"],
  recipients: ["advertiser", "publisher"],
  policy: aggregation(["arm", "users", "converters", "conversion_rate"]),
};

/** The template's audience overlap, run by either party and received by both. */
export const audienceOverlap: ApprovedQuery = audienceOverlapQuery(
  ["advertiser", "publisher"],
  ["advertiser", "publisher"],
);

/** The template's last-touch attribution, under the custom rule with differential privacy. */
export const lastTouch: ApprovedQuery = lastTouchQuery("advertiser");

/** Audience insight: publisher traits (age band) of the advertiser's buyers in one category. */
export const audienceInsight: ApprovedQuery = {
  id: "audience-insight",
  sql: `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e
JOIN advertiser_purchases p ON p.user_id = e.user_id
WHERE p.category = $category
GROUP BY e.age_band`,
  parameters: [{ name: "category", type: "VARCHAR" }],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: aggregation(["age_band", "overlap_users"]),
};

export const useCaseQueries = [closedLoop, audienceOverlap, lastTouch, audienceInsight];

/** The demo contract for two parties, given their public keys. */
export function useCaseContract(parties: Party[]): Contract {
  return {
    version: 1,
    id: "acme-news-q3",
    parties,
    datasets: [purchases, exposures],
    queries: useCaseQueries,
  };
}

export const hashedEmail = (i: number): string =>
  createHash("sha256").update(`user${i}@example.com`).digest("hex");

/** A fast deterministic hash of (seed, i, salt) to [0, 1): data must repeat, and be quick at 10M rows. */
function unit(seed: number, i: number, salt: number): number {
  let h =
    Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i, 0xc2b2ae35) ^ Math.imul(salt + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

const ts = (day: number, hour: number): string =>
  new Date(Date.UTC(2024, 3, 1 + day, hour)).toISOString().replace("T", " ").replace(".000Z", "");

export interface UseCaseDataOptions {
  /** Publisher users; the advertiser also has 0.8× as many customers the publisher does not know. */
  identities: number;
  seed?: number;
  /** Lines per yielded chunk. */
  batch?: number;
}

const SEGMENTS = ["sports", "news", "finance", "lifestyle"];
const CHANNELS = ["ctv", "display", "social"];

/**
 * Publisher: users 70 % in the exposed arm of campaign "spring24", 1-3 exposures each in April
 * 2024, four segments, age bands with a rare "65+" (~1 %). Advertiser: purchases by 40 % of
 * exposed and 20 % of control users after their first exposure, plus customers the publisher
 * does not know. Yields CSV text chunks, header first, for each dataset in turn.
 */
export function* useCaseRows(which: "purchases" | "exposures", o: UseCaseDataOptions): Generator<string> {
  const seed = o.seed ?? 1;
  const batch = o.batch ?? 10_000;
  const ds = which === "purchases" ? purchases : exposures;
  let lines: string[] = [ds.columns.map((c) => c.name).join(",")];
  const flush = function* () {
    if (lines.length) yield `${lines.join("\n")}\n`;
    lines = [];
  };
  for (let i = 0; i < o.identities; i++) {
    const id = hashedEmail(i);
    const arm = unit(seed, i, 1) < 0.7 ? "exposed" : "control";
    const firstDay = Math.floor(unit(seed, i, 4) * 20);
    if (which === "exposures") {
      const segment = SEGMENTS[Math.floor(unit(seed, i, 2) * 4)];
      const a = unit(seed, i, 3);
      const age = a < 0.01 ? "65+" : a < 0.35 ? "18-34" : a < 0.7 ? "35-49" : "50-64";
      const n = 1 + Math.floor(unit(seed, i, 5) * 3);
      for (let j = 0; j < n; j++) {
        const channel = CHANNELS[Math.floor(unit(seed, i * 7 + j, 6) * 3)];
        lines.push(`${id},${ts(firstDay + j * 2, 10 + j)},spring24,${channel},${arm},${segment},${age}`);
      }
    } else if (unit(seed, i, 7) < (arm === "exposed" ? 0.4 : 0.2)) {
      const category = unit(seed, i, 8) < 0.5 ? "shoes" : "apparel";
      lines.push(`${id},${ts(firstDay + 5, 15)},${(20 + unit(seed, i, 9) * 180).toFixed(2)},${category}`);
    }
    if (lines.length >= batch) yield* flush();
  }
  if (which === "purchases") {
    for (let i = o.identities; i < Math.floor(o.identities * 1.8); i++) {
      const day = Math.floor(unit(seed, i, 4) * 25);
      lines.push(`${hashedEmail(i)},${ts(day, 12)},${(10 + unit(seed, i, 9) * 90).toFixed(2)},shoes`);
      if (lines.length >= batch) yield* flush();
    }
  }
  yield* flush();
}
