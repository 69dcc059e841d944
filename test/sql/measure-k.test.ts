/**
 * k counts the people an aggregate of a measure reads, not only the people in the group: a sum over
 * a group of k in which one person alone has a value is that person's value.
 */
import { describe, expect, it } from "vitest";
import { openEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { csvStream } from "./helpers.js";
import { hashedEmail, purchases } from "./usecases.js";

const K = 50;
const query: ApprovedQuery = {
  id: "revenue",
  sql: "SELECT p.category AS category, count(*) AS n, sum(p.amount) AS revenue FROM advertiser_purchases p GROUP BY p.category",
  parameters: [],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: { kind: "aggregation", minDistinctIdentities: K, allowedColumns: ["category", "n", "revenue"] },
};

/** 100 people in category "c"; the first `valued` of them have an amount, the others none. */
async function run(valued: number): Promise<unknown[][]> {
  const lines = ["user_id,purchase_ts,amount,category"];
  for (let i = 0; i < 100; i++) {
    lines.push(`${hashedEmail(i)},2024-04-05 12:00:00,${i < valued ? (17 + i).toFixed(2) : ""},c`);
  }
  const engine = await openEngine();
  try {
    await ingestDataset(engine, purchases, csvStream(`${lines.join("\n")}\n`, 65536));
    return (await runApprovedQuery(engine, query, {})).rows;
  } finally {
    engine.close();
  }
}

describe("k for the people a measure's aggregate reads", () => {
  it("suppresses a group of 100 people when fewer than k of them have a value", async () => {
    expect(await run(1)).toEqual([]);
    expect(await run(K - 1)).toEqual([]);
  });

  it("releases it when k of them have a value", async () => {
    const rows = await run(K);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.slice(0, 2)).toEqual(["c", "100"]);
  });
});
