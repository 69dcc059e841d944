/**
 * A loaded clean room to attack: a real in-process Enclave holding the use-case datasets plus
 * canary rows (one person each, with a unique marker value), under a contract with the four
 * use-case queries and a few approved-but-tempting ones an attacker would reach for.
 */
import { randomBytes } from "node:crypto";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import type { QueryBody } from "../../protocol/jose/messages.js";
import { useCaseRows } from "../../scripts/demo/usecases.js";
import { openWorld, type Party, sealed, serveCsv, type World } from "../enclave/world.js";
import { hashedEmail, K, purchases, useCaseQueries } from "../sql/usecases.js";
import { DP_READY } from "./judge.js";

const tag = randomBytes(6).toString("hex");
export const CANARY = {
  category: `CANARYcat${tag}`,
  segment: `CANARYseg${tag}`,
  advertiserId: hashedEmail(90_000_000 + Number.parseInt(tag.slice(0, 6), 16)),
  publisherId: hashedEmail(91_000_000 + Number.parseInt(tag.slice(6), 16)),
  amount: "98765.43",
};
/** When the canary bought (no demo purchase is at a minute other than :00); requesters send it. */
export const CANARY_PURCHASE_TS = "2024-04-10 12:34:56";

const agg = (allowedColumns: string[], maxRuns?: number) => ({
  kind: "aggregation" as const,
  minDistinctIdentities: K,
  allowedColumns,
  ...(maxRuns ? { maxRuns } : {}),
});

/** Approved queries (inside the aggregation rule) an attacker can call with any parameters. */
export const TEMPTING: ApprovedQuery[] = [
  {
    id: "by-category",
    sql: `SELECT p.category AS category, count(DISTINCT p.user_id) AS buyers, round(sum(p.amount), 2) AS revenue
FROM advertiser_purchases p WHERE p.category = $category GROUP BY p.category`,
    parameters: [{ name: "category", type: "VARCHAR" }],
    runners: ["advertiser", "publisher"],
    recipients: ["advertiser", "publisher"],
    policy: agg(["category", "buyers", "revenue"]),
  },
  {
    id: "spend-window",
    sql: `SELECT count(DISTINCT p.user_id) AS buyers, round(sum(p.amount), 2) AS revenue
FROM advertiser_purchases p WHERE p.purchase_ts >= $from AND p.purchase_ts < $to`,
    parameters: [
      { name: "from", type: "TIMESTAMP" },
      { name: "to", type: "TIMESTAMP" },
    ],
    runners: ["publisher"],
    recipients: ["publisher"],
    policy: agg(["buyers", "revenue"]),
  },
  {
    id: "spend-window-once",
    sql: `SELECT count(DISTINCT p.user_id) AS buyers FROM advertiser_purchases p WHERE p.purchase_ts < $to`,
    parameters: [{ name: "to", type: "TIMESTAMP" }],
    runners: ["publisher"],
    recipients: ["publisher"],
    policy: agg(["buyers"], 1),
  },
  {
    id: "segment-of",
    sql: `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users
FROM publisher_exposures e WHERE e.segment = $segment GROUP BY e.segment`,
    parameters: [{ name: "segment", type: "VARCHAR" }],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: agg(["segment", "users"]),
  },
  {
    // Casting a text column would fail on a row value, and DuckDB's message would quote it.
    id: "cast-error",
    sql: `SELECT count(DISTINCT p.user_id) AS buyers FROM advertiser_purchases p
WHERE CAST(p.category AS INTEGER) > 0 AND p.category <> $category`,
    parameters: [{ name: "category", type: "VARCHAR" }],
    runners: ["publisher"],
    recipients: ["publisher"],
    policy: agg(["buyers"]),
  },
];

export interface Room extends World {
  /** Runs a query request; returns the enclave's reply and every recipient's decrypted result. */
  query(party: Party, body: QueryBody): Promise<{ response: string; texts: string[] }>;
}

function withCanaries(which: "purchases" | "exposures", identities: number): string {
  const rows = [...useCaseRows(which, { identities })];
  rows.push(
    which === "purchases"
      ? `${CANARY.advertiserId},${CANARY_PURCHASE_TS},${CANARY.amount},${CANARY.category}\n`
      : `${CANARY.publisherId},2024-04-05 10:00:00,spring24,ctv,exposed,${CANARY.segment},18-34\n`,
  );
  return rows.join("");
}

export async function openRoom(identities = 800): Promise<Room> {
  // The custom-rule use case joins once the DP rewrite is in place.
  const useCases = useCaseQueries.filter((q) => DP_READY || q.policy.kind !== "custom");
  const { enclave, contract, advertiser, publisher } = await openWorld(
    [...useCases, ...TEMPTING],
    undefined,
    {
      engineOptions: { queryTimeoutMs: 1_500, maxResultRows: 10_000 },
    },
  );
  for (const [party, dataset, which] of [
    [advertiser, "advertiser_purchases", "purchases"],
    [publisher, "publisher_exposures", "exposures"],
  ] as const) {
    await serveCsv(enclave, contract, party, dataset, withCanaries(which, identities));
  }
  const { openResult } = await import("../enclave/world.js");
  const parties = { advertiser, publisher } as Record<string, Party>;
  return {
    enclave,
    contract,
    advertiser,
    publisher,
    async query(party, body) {
      const reply = await enclave.handleRequest(await sealed(enclave, contract, party, "query", body));
      const texts = await Promise.all(
        Object.entries(reply.results ?? {}).map(([id, b64]) => openResult(parties[id]!, b64)),
      );
      return { response: reply.response, texts };
    },
  };
}

export { purchases };
