/**
 * A DP count end to end through the Enclave class: the result is a noised integer, each run's
 * epsilon is debited from every recipient and recorded in the audit log (with the ledger debits,
 * from which the ledger is rebuilt), a party's budget runs out with ERR_DP_BUDGET for every query
 * it would receive, and nothing data-dependent beyond the released rows (no count of dropped or
 * suppressed groups) is released. Also: private group keys pass a noisy
 * threshold instead of the exact k cut, public group keys are exactly the declared ones, and
 * contributions are bounded (per person, over the whole query) and clamped in the SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivacyBudget } from "../../enclave/dp/budget.js";
import type { AuditEntry } from "../../protocol/audit/entry.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { testPolicy } from "../enclave/sim.js";
import type { Party } from "../enclave/world.js";
import {
  AGE_BANDS,
  buyers,
  Clients,
  data,
  exactBuyers,
  hashedEmail,
  insightDp,
  insightPublic,
  K,
  NOBODY,
  userSpend,
} from "./setup.js";

const HEAVY = hashedEmail(900_001);
const SMALL = hashedEmail(900_002);
const NEGATIVE = hashedEmail(900_003);
// 10 purchases of 500 by one user, one of 42, one of -50 (clamp is [0, 100], 3 rows per user).
const extra = [
  ...Array.from({ length: 10 }, (_, i) => `${HEAVY},2024-04-0${(i % 9) + 1} 12:00:00,500.00,shoes`),
  `${SMALL},2024-04-02 12:00:00,42.00,apparel`,
  `${NEGATIVE},2024-04-02 12:00:00,-50.00,apparel`,
];
const csv = data(extra);
/** Budget 3 at epsilon 1: buyers-dp reaches both parties, buyers-adv only the advertiser. */
let budgets: Clients;
/** Large budgets (the contract's smallest budget is everyone's): shapes and bounds. */
let world: Clients;

beforeAll(async () => {
  const dp = { epsilon: 1, budget: 3, maxRowsPerIdentity: 5 };
  const advertiserOnly: ApprovedQuery = {
    ...buyers("buyers-adv", dp),
    runners: ["advertiser"],
    recipients: ["advertiser"],
  };
  [budgets, world] = await Promise.all([
    Clients.start([buyers("buyers-dp", dp), advertiserOnly]),
    Clients.start([userSpend, insightDp, insightPublic]),
  ]);
  await Promise.all([budgets.load(csv), world.load(csv)]);
});
afterAll(() => {
  budgets.close();
  world.close();
});

const code = (c: string) => expect.objectContaining({ code: c });

describe("DP count end to end", () => {
  const params = { category: "shoes", exclude: NOBODY };

  it("releases a noised integer and charges every recipient; a party's budget runs out for every query it receives", async () => {
    const exact = exactBuyers(csv.purchases, "shoes");
    expect(exact).toBeGreaterThan(K);
    const release = async (party: Party, queryId: string) => {
      const { body, rows, receipt } = await budgets.run(party, queryId, params);
      expect(body).toMatchObject({ epsilon: 1 });
      expect(receipt).toMatchObject({ rows: 1 });
      expect(receipt).not.toHaveProperty("groupsSuppressed");
      // BIGINT cells are JSON strings of an integer, noised or not.
      const value = rows[0]![0] as string;
      expect(value).toMatch(/^\d+$/);
      // Discrete Laplace(1): |noise| >= 40 has probability about 2e^-40.
      expect(Math.abs(Number(value) - exact)).toBeLessThan(40);
    };
    // Spent (advertiser, publisher): (1, 1), (2, 2), then (3, 2).
    await release(budgets.publisher, "buyers-dp");
    await release(budgets.publisher, "buyers-dp");
    await release(budgets.advertiser, "buyers-adv");
    await expect(budgets.run(budgets.advertiser, "buyers-adv", params)).rejects.toEqual(
      code("ERR_DP_BUDGET"),
    );
    // The publisher has one run left, but buyers-dp would also tell the exhausted advertiser.
    await expect(budgets.run(budgets.publisher, "buyers-dp", params)).rejects.toEqual(code("ERR_DP_BUDGET"));
  });

  it("records epsilon and one ledger debit per recipient in the audit log; the ledger rebuilds from it", async () => {
    const { entries, head } = budgets.enclave.audit(1);
    const log = await verifyAuditLog(entries, await testPolicy(), { heads: [head] });
    const runs = log.entries.filter((e): e is AuditEntry<"query-run"> => e.kind === "query-run");
    expect(runs.map((r) => [r.data.requester, r.data.query, r.data.epsilon])).toEqual([
      ["publisher", "buyers-dp", 1],
      ["publisher", "buyers-dp", 1],
      ["advertiser", "buyers-adv", 1],
    ]);
    expect(runs.map((r) => r.data.debits?.map((d) => [d.party, d.total]))).toEqual([
      [
        ["advertiser", 1e6],
        ["publisher", 1e6],
      ],
      [
        ["advertiser", 2e6],
        ["publisher", 2e6],
      ],
      [["advertiser", 3e6]],
    ]);
    const budget = PrivacyBudget.replay(runs.flatMap((r) => r.data.debits ?? []));
    expect(budget.spent("advertiser")).toBe(3_000_000);
    expect(budget.spent("publisher")).toBe(2_000_000);
    // The refused runs left no entry; counts are never in the clear on the chain.
    expect(runs.every((r) => !("groupsSuppressed" in r.data) && !("rows" in r.data))).toBe(true);
  });

  it("private group keys: the noisy threshold (at least k) drops the rare band; exact counts are not released", async () => {
    const { receipt, rows } = await world.run(world.advertiser, "insight-dp", { category: "shoes" });
    // The receipt counts the released rows only: nothing says a band was dropped.
    expect(receipt).toMatchObject({ rows: rows.length });
    expect(receipt).not.toHaveProperty("groupsSuppressed");
    const bands = rows.map((r) => r[0]);
    expect(bands).toEqual(["18-34", "35-49", "50-64"]); // "65+" (about 1 % of buyers) never passes
    for (const r of rows) expect(r[1]).toMatch(/^\d+$/);
  });

  it("public group keys: exactly the declared bands, in order, the rare and the absent ones too", async () => {
    const { body, rows, receipt } = await world.run(world.advertiser, "insight-public", {
      category: "shoes",
    });
    expect(body).toMatchObject({ epsilon: 1 });
    expect(receipt).toMatchObject({ rows: AGE_BANDS.length });
    expect(receipt).not.toHaveProperty("groupsSuppressed");
    expect(rows.map((r) => r[0])).toEqual(AGE_BANDS);
    // "unknown" holds no one: its count is noise around 0 (scale 3 here), clamped at 0 when shown.
    const unknown = Number(rows.find((r) => r[0] === "unknown")![1]);
    expect(unknown).toBeLessThan(60);
  });
});

describe("contribution bounding in the SQL rewrite", () => {
  // Epsilon 1e5: noise scale 3 / 5e4 (count) and 300 / 5e4 (sum), so values are exact here.
  it("a user with ten rows contributes at most maxRowsPerIdentity = 3 rows", async () => {
    const { rows } = await world.run(world.advertiser, "user-spend", { user: HEAVY });
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]![0])).toBe(3);
    // Each kept row's 500 is clamped to the upper bound 100.
    expect(Number(rows[0]![1])).toBe(300);
  });

  it("clamps sum inputs below the range up, and leaves values inside it", async () => {
    const small = await world.run(world.advertiser, "user-spend", { user: SMALL });
    expect(small.rows[0]!.map(Number)).toEqual([1, 42]);
    const negative = await world.run(world.advertiser, "user-spend", { user: NEGATIVE });
    expect(negative.rows[0]!.map(Number)).toEqual([1, 0]);
  });
});
