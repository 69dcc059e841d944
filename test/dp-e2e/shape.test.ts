/**
 * Contract-load checks of DP queries (enclave/sql/dp-rewrite.ts): the declared mechanisms must
 * fit the SQL's shape and output, or the contract is refused with ERR_CONTRACT_QUERY.
 */
import { describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { ApprovedQuery, DpPolicy } from "../../protocol/contract/types.js";
import { useCaseContract } from "../sql/usecases.js";
import { insightDp, userSpend } from "./setup.js";

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

describe("DP queries at contract load", () => {
  it("accepts the DP use cases", async () => {
    await expect(check(insightDp)).resolves.toBeUndefined();
    await expect(check(userSpend)).resolves.toBeUndefined();
  });

  const refused: [string, ApprovedQuery, string][] = [
    [
      "a join in the top-level FROM",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e JOIN advertiser_purchases p ON p.user_id = e.user_id GROUP BY e.age_band`),
      "dp: the top-level FROM must be exactly one dataset table",
    ],
    [
      "an undeclared aggregate output",
      withQuery(
        `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users, count(*) AS n
FROM publisher_exposures e GROUP BY e.age_band`,
        {},
        ["age_band", "overlap_users", "n"],
      ),
      "dp: every output column must be a noised column or a group key",
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
      "ORDER BY an exact aggregate",
      withQuery(`SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e GROUP BY e.age_band ORDER BY overlap_users`),
      "dp: ORDER BY may only use group keys",
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
      "dp: each noised column must be one aliased output column",
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
  ];

  it.each(refused)("refuses %s", async (_name, query, reason) => {
    await expect(check(query)).rejects.toMatchObject({ code: "ERR_CONTRACT_QUERY", reason });
  });
});
