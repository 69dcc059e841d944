import { describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { ApprovedQuery, OutputPolicy } from "../../protocol/contract/types.js";
import { useCaseContract, useCaseQueries } from "./usecases.js";

const aggregate: OutputPolicy = {
  kind: "aggregate",
  minDistinctIdentities: 50,
  allowedColumns: ["segment", "n", "user_id", "amount", "x"],
};

function query(sql: string, extra: Partial<ApprovedQuery> = {}): ApprovedQuery {
  return {
    id: "q1",
    sql,
    parameters: [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: aggregate,
    ...extra,
  };
}

const check = (q: ApprovedQuery) => checkContractQueries({ ...useCaseContract, queries: [q] });

async function expectRefused(q: ApprovedQuery, reason: RegExp): Promise<void> {
  const err = await check(q).catch((e) => e);
  expect(err).toMatchObject({ code: "ERR_CONTRACT_QUERY", queryId: "q1" });
  expect(err.reason).toMatch(reason);
}

describe("approved-query check", () => {
  it("accepts the four use-case queries", async () => {
    await expect(checkContractQueries(useCaseContract)).resolves.toBeUndefined();
    expect(useCaseQueries).toHaveLength(4);
  });

  it("accepts a global aggregate without GROUP BY and a row-level query", async () => {
    await expect(check(query("SELECT count(*) AS n FROM advertiser_purchases"))).resolves.toBeUndefined();
    const comma =
      "SELECT count(*) AS n FROM advertiser_purchases p, publisher_exposures e WHERE p.user_id = e.user_id";
    await expect(check(query(comma))).resolves.toBeUndefined();
    const rowLevel = query("SELECT segment FROM publisher_exposures WHERE arm = $arm", {
      parameters: [{ name: "arm", type: "VARCHAR" }],
      policy: { kind: "row-level", minDistinctIdentities: 1, allowedColumns: ["segment"] },
    });
    await expect(check(rowLevel)).resolves.toBeUndefined();
  });

  const refusals: [string, string, RegExp][] = [
    [
      "a raw identity column",
      "SELECT user_id, count(*) AS n FROM advertiser_purchases GROUP BY user_id",
      /identity/,
    ],
    [
      "an identity inside a scalar function",
      "SELECT left(e.user_id, 4) AS x, count(*) AS n FROM publisher_exposures e GROUP BY 1",
      /identity/,
    ],
    ["an identity inside max()", "SELECT max(user_id) AS x FROM advertiser_purchases", /identity/],
    ["read_csv", "SELECT count(*) AS n FROM read_csv('/etc/passwd')", /table functions/],
    [
      "read_csv in a subquery",
      "SELECT count(*) AS n FROM advertiser_purchases WHERE category IN (SELECT * FROM read_csv('/x'))",
      /table functions/,
    ],
    ["range()", "SELECT count(*) AS n FROM range(10)", /table functions/],
    [
      "a file-reading scalar function",
      "SELECT count(*) AS n FROM advertiser_purchases WHERE category = getenv('HOME')",
      /function/,
    ],
    ["COPY", "COPY advertiser_purchases TO '/tmp/x.csv'", /single SELECT/],
    ["ATTACH", "ATTACH '/tmp/x.db'", /single SELECT/],
    ["INSTALL", "INSTALL httpfs", /single SELECT/],
    ["PRAGMA", "PRAGMA threads=4", /single SELECT/],
    ["SET", "SET memory_limit='8GB'", /single SELECT/],
    [
      "multiple statements",
      "SELECT count(*) AS n FROM advertiser_purchases; SELECT count(*) AS n FROM advertiser_purchases",
      /exactly one/,
    ],
    ["an unknown table", "SELECT count(*) AS n FROM customers", /unknown table/],
    ["a system table", "SELECT count(*) AS n FROM duckdb_tables()", /table functions/],
    ["a schema-qualified table", "SELECT count(*) AS n FROM information_schema.tables", /qualified/],
    ["an undeclared column", "SELECT count(rowid) AS n FROM advertiser_purchases", /unknown column/],
    [
      "an output column outside the policy",
      "SELECT category, count(*) AS n FROM advertiser_purchases GROUP BY category",
      /output column/,
    ],
    [
      "an undeclared parameter",
      "SELECT count(*) AS n FROM advertiser_purchases WHERE category = $cat",
      /undeclared/,
    ],
    [
      "a positional parameter",
      "SELECT count(*) AS n FROM advertiser_purchases WHERE category = ?",
      /undeclared|positional/,
    ],
    ["no aggregation", "SELECT amount FROM advertiser_purchases", /aggregate/],
    ["SELECT *", "SELECT * FROM advertiser_purchases", /\*/],
    [
      "a subquery in the top-level FROM",
      "SELECT count(*) AS n FROM (SELECT * FROM advertiser_purchases) s",
      /top-level FROM/,
    ],
    [
      "an ASOF join",
      "SELECT count(*) AS n FROM advertiser_purchases p ASOF JOIN publisher_exposures e ON p.user_id = e.user_id AND p.purchase_ts >= e.exposure_ts",
      /top-level FROM/,
    ],
    [
      "a CTE in the top-level FROM",
      "WITH s AS (SELECT * FROM advertiser_purchases) SELECT count(*) AS n FROM s",
      /top-level FROM/,
    ],
    [
      "a CTE shadowing a dataset",
      "WITH advertiser_purchases AS (SELECT 1 AS amount) SELECT count(*) AS n FROM publisher_exposures",
      /shadow/,
    ],
    ["ROLLUP", "SELECT segment, count(*) AS n FROM publisher_exposures GROUP BY ROLLUP(segment)", /ROLLUP/],
    [
      "a window over groups",
      "SELECT segment, sum(count(*)) OVER () AS n FROM publisher_exposures GROUP BY segment",
      /window/,
    ],
    [
      "a set operation",
      "SELECT count(*) AS n FROM advertiser_purchases UNION ALL SELECT count(*) FROM publisher_exposures",
      /plain SELECT/,
    ],
    [
      "a scalar subquery in the output",
      "SELECT segment, (SELECT max(amount) FROM advertiser_purchases) AS x FROM publisher_exposures GROUP BY segment",
      /subquer/,
    ],
    [
      "SELECT DISTINCT",
      "SELECT DISTINCT segment, count(*) AS n FROM publisher_exposures GROUP BY segment",
      /DISTINCT/,
    ],
    [
      "the reserved hidden-column prefix",
      "SELECT count(*) AS __cleanroom_k0 FROM advertiser_purchases",
      /reserved/,
    ],
    ["unparseable SQL", "SELEC count(*) FROM advertiser_purchases", /single SELECT/],
  ];
  it.each(refusals)("refuses %s", async (_name, sql, reason) => {
    await expectRefused(query(sql), reason);
  });

  it("refuses a declared parameter the SQL does not use", async () => {
    const q = query("SELECT count(*) AS n FROM advertiser_purchases", {
      parameters: [{ name: "cat", type: "VARCHAR" }],
    });
    await expectRefused(q, /does not use/);
  });

  it("refuses identity output under aggregation even when the policy lists it", async () => {
    await expectRefused(query("SELECT p.user_id FROM advertiser_purchases p GROUP BY ALL"), /identity/);
  });

  it("refuses a row-level query that outputs a column outside allowedColumns", async () => {
    const q = query("SELECT * FROM advertiser_purchases", {
      policy: { kind: "row-level", minDistinctIdentities: 1, allowedColumns: ["amount"] },
    });
    await expectRefused(q, /output column/);
  });

  it("refuses a bad k", async () => {
    const q = query("SELECT count(*) AS n FROM advertiser_purchases", {
      policy: { ...aggregate, minDistinctIdentities: 0 },
    });
    await expectRefused(q, /minDistinctIdentities/);
  });
});
