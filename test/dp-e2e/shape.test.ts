/**
 * Contract-load checks of custom-rule queries (enclave/sql/dp-rewrite.ts through
 * checkContractQueries): the declared mechanisms must fit the SQL's shape and output types, or
 * the contract is refused with ERR_CONTRACT_QUERY. Joins, subqueries, CTEs and windows in FROM
 * and WHERE are accepted: the per-person rewrite bounds them.
 */
import { describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { ApprovedQuery, DpPolicy } from "../../protocol/contract/types.js";
import { useCaseContract } from "../sql/usecases.js";
import { buyers, insightDp, insightPublic, userSpend } from "./setup.js";

function withQuery(sql: string, dp: Partial<DpPolicy> = {}, allowed?: string[]): ApprovedQuery {
  const base = insightDp;
  return {
    ...base,
    parameters: sql.includes("$category") ? base.parameters : [],
    sql,
    policy: {
      ...base.policy,
      allowedColumns: allowed ?? base.policy.allowedColumns,
      dp: { ...base.policy.dp!, ...dp },
    },
  };
}

const check = (q: ApprovedQuery) => checkContractQueries({ ...useCaseContract, queries: [q] });

describe("custom-rule queries at contract load", () => {
  it("accepts the DP use cases", async () => {
    await expect(check(insightDp)).resolves.toBeUndefined();
    await expect(check(insightPublic)).resolves.toBeUndefined();
    await expect(check(userSpend)).resolves.toBeUndefined();
    await expect(
      check(buyers("b", { epsilon: 1, budget: 2, maxRowsPerIdentity: 2 })),
    ).resolves.toBeUndefined();
  });

  it("accepts joins, CTEs, correlated subqueries and windows (bounded per person by the rewrite)", async () => {
    const accepted = [
      `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e JOIN advertiser_purchases p ON p.user_id = e.user_id GROUP BY e.age_band`,
      `WITH firsts AS (SELECT x.user_id, x.age_band, row_number() OVER (PARTITION BY x.user_id
  ORDER BY x.exposure_ts) AS rn FROM publisher_exposures x)
SELECT f.age_band AS age_band, count(DISTINCT f.user_id) AS overlap_users FROM firsts f
WHERE f.rn = 1 AND EXISTS (SELECT 1 FROM advertiser_purchases p WHERE p.user_id = f.user_id)
GROUP BY f.age_band`,
    ];
    for (const sql of accepted) await expect(check(withQuery(sql))).resolves.toBeUndefined();
  });

  const refused: [string, ApprovedQuery, string | RegExp][] = [
    [
      "ORDER BY (the enclave orders released rows)",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band ORDER BY age_band`),
      "dp: ORDER BY is not allowed (the enclave orders released rows)",
    ],
    [
      "an undeclared aggregate output",
      withQuery(
        `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users, count(*) AS n
FROM publisher_exposures e GROUP BY e.age_band`,
        {},
        ["age_band", "overlap_users", "n"],
      ),
      "dp: every output column must be a dp column or a GROUP BY expression",
    ],
    [
      "a wrapped aggregate (changes its sensitivity)",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) * 10 AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band`),
      "dp: a count-distinct column must be count(DISTINCT <identity column>)",
    ],
    [
      "count-distinct of a non-identity column",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.segment) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band`),
      "dp: a count-distinct column must be count(DISTINCT <identity column>)",
    ],
    [
      "HAVING on an exact aggregate",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band HAVING count(*) > 3`),
      "dp: HAVING is not allowed",
    ],
    [
      "LIMIT",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band LIMIT 2`),
      "dp: LIMIT and OFFSET are not allowed",
    ],
    [
      'groups "single" with a GROUP BY',
      withQuery(
        `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band`,
        { groups: "single" },
      ),
      'dp: groups "single" exactly when there is no GROUP BY',
    ],
    [
      "a noised column that is not in the output",
      withQuery(
        `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS users
FROM publisher_exposures e GROUP BY e.age_band`,
        {},
        ["age_band", "users", "overlap_users"],
      ),
      "dp: every output column must be a dp column or a GROUP BY expression",
    ],
    [
      "a sum declared over a count",
      withQuery(
        `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users, count(*) AS n
FROM publisher_exposures e GROUP BY e.age_band`,
        {
          columns: [
            { name: "overlap_users", kind: "count-distinct" },
            { name: "n", kind: "sum" },
          ],
          clamp: { lower: 0, upper: 1 },
        },
        ["age_band", "overlap_users", "n"],
      ),
      "dp: a sum column must be sum(expression)",
    ],
    [
      "a whole row as a group key",
      withQuery(
        `SELECT e AS e, count(DISTINCT e.user_id) AS overlap_users FROM publisher_exposures e GROUP BY e`,
        {},
        ["e", "overlap_users"],
      ),
      "dp: a group key may not be a whole row",
    ],
    [
      "a struct group key",
      withQuery(
        `SELECT struct_pack(band := e.age_band, seg := e.segment) AS k, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY struct_pack(band := e.age_band, seg := e.segment)`,
        {},
        ["k", "overlap_users"],
      ),
      // The function wall or the scalar output check, whichever comes first.
      /struct_pack|scalar/,
    ],
    [
      "the identity as a group key",
      withQuery(
        `SELECT e.user_id AS who, count(DISTINCT e.user_id) AS overlap_users FROM publisher_exposures e
GROUP BY e.user_id`,
        {},
        ["who", "overlap_users"],
      ),
      "dp: a group key may not be an identity column",
    ],
    [
      "a public domain that does not fit the key's type",
      withQuery(insightPublic.sql, { groups: "public", domain: [{ column: "age_band", values: [18, 35] }] }),
      "dp: a domain value does not fit its key column's type",
    ],
  ];

  it.each(refused)("refuses %s", async (_name, query, reason) => {
    const error = await check(query).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "ERR_CONTRACT_QUERY" });
    if (typeof reason === "string") expect(error).toMatchObject({ reason });
    else expect((error as { reason: string }).reason).toMatch(reason);
  });
});
