import { describe, expect, it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { ApprovedQuery, Contract, OutputPolicy } from "../../protocol/contract/types.js";
import { useCaseContract, useCaseQueries } from "./usecases.js";

const aggregation: OutputPolicy = {
  kind: "aggregation",
  minDistinctIdentities: 50,
  allowedColumns: ["segment", "n", "user_id", "amount", "x", "total", "arm", "rate"],
};

function query(sql: string, extra: Partial<ApprovedQuery> = {}): ApprovedQuery {
  return {
    id: "q1",
    sql,
    parameters: [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: aggregation,
    ...extra,
  };
}

const check = (q: ApprovedQuery, contract: Contract = useCaseContract) =>
  checkContractQueries({ ...contract, queries: [q] });

async function expectRefused(q: ApprovedQuery, reason: RegExp, contract?: Contract): Promise<void> {
  const err = await check(q, contract).catch((e) => e);
  expect(err).toMatchObject({ code: "ERR_CONTRACT_QUERY", queryId: "q1" });
  expect(err.reason).toMatch(reason);
}

const P = "advertiser_purchases";
const E = "publisher_exposures";
const cat = [{ name: "cat", type: "VARCHAR" as const }];
const who = [{ name: "who", type: "VARCHAR" as const }];

describe("aggregation rule", () => {
  it("admits the demo's queries", async () => {
    await expect(checkContractQueries(useCaseContract)).resolves.toBeUndefined();
    expect(useCaseQueries).toHaveLength(4);
  });

  const admitted: [string, string, ApprovedQuery["parameters"]?][] = [
    ["a global count", `SELECT count(*) AS n FROM ${P} p`],
    ["a grouped sum", `SELECT p.category AS segment, sum(p.amount) AS total FROM ${P} p GROUP BY p.category`],
    [
      "a parameter compared with a dimension",
      `SELECT count(*) AS n FROM ${P} p WHERE p.category = $cat AND p.purchase_ts >= DATE '2024-04-01'`,
      cat,
    ],
    [
      "an inner join on identities with a dimension filter in ON",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS n FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id AND p.purchase_ts > e.exposure_ts GROUP BY e.segment`,
    ],
    [
      "ratios and rounding of aggregates",
      `SELECT e.arm AS arm, round(count(DISTINCT p.user_id) / count(DISTINCT e.user_id), 4) AS rate FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id GROUP BY e.arm`,
    ],
    [
      "a dimension expression and HAVING on a count",
      `SELECT date_trunc('week', p.purchase_ts) AS x, avg(p.amount) AS total FROM ${P} p GROUP BY date_trunc('week', p.purchase_ts) HAVING count(DISTINCT p.user_id) > 100`,
    ],
    [
      "IN and BETWEEN with parameters",
      `SELECT count(*) AS n FROM ${P} p WHERE p.category IN ($cat, 'shoes') AND p.purchase_ts BETWEEN $a AND $b`,
      [...cat, { name: "a", type: "DATE" }, { name: "b", type: "DATE" }],
    ],
  ];
  it.each(admitted)("admits %s", async (_name, sql, parameters = []) => {
    await expect(check(query(sql, { parameters }))).resolves.toBeUndefined();
  });

  const refusals: [string, string, RegExp, ApprovedQuery["parameters"]?][] = [
    // Identity out through the row, a rename or a position.
    [
      "a raw identity",
      `SELECT p.user_id AS user_id, count(*) AS n FROM ${P} p GROUP BY p.user_id`,
      /identity column p.user_id/,
    ],
    [
      "an identity inside a scalar",
      `SELECT left(e.user_id, 4) AS x, count(*) AS n FROM ${E} e GROUP BY left(e.user_id, 4)`,
      /identity column e.user_id/,
    ],
    [
      "max of an identity",
      `SELECT max(p.user_id) AS x FROM ${P} p`,
      /identity column p.user_id may only be counted/,
    ],
    ["the row struct in arg_max", `SELECT arg_max(p, p.amount) AS x FROM ${P} p`, /function arg_max/],
    ["the row struct cast to text", `SELECT max(p::VARCHAR) AS x FROM ${P} p`, /exactly one column/],
    [
      "struct_extract of the row",
      `SELECT count(*) AS n, struct_extract(p, 'user_id') AS x FROM ${P} p GROUP BY struct_extract(p, 'user_id')`,
      /must be written as alias.column|struct_extract/,
    ],
    ["a positional reference", `SELECT count(#1) AS n FROM ${P} p`, /exactly one column|positional/],
    [
      "a column list renaming the identity",
      `SELECT p.user_id AS x, count(*) AS n FROM ${P} AS p(uid, ts, user_id, c) GROUP BY p.user_id`,
      /column list/,
    ],
    [
      "an unqualified column",
      `SELECT category AS segment, count(*) AS n FROM ${P} p GROUP BY category`,
      /alias.column/,
    ],
    [
      "a bit of the identity in a FILTER",
      `SELECT count(*) FILTER (WHERE substr(p.user_id, 1, 1) = 'a') AS n FROM ${P} p`,
      /FILTER/,
    ],
    // Aggregates that return one person's value.
    [
      "max of a measure the owner did not allow",
      `SELECT max(p.amount) AS x FROM ${P} p`,
      /max of p.amount is not allowed/,
    ],
    [
      "first with ORDER BY",
      `SELECT first(p.amount ORDER BY p.purchase_ts) AS x FROM ${P} p`,
      /function first/,
    ],
    ["any_value", `SELECT any_value(p.category) AS x FROM ${P} p`, /function any_value/],
    [
      "mode with FILTER",
      `SELECT mode(p.amount) FILTER (WHERE p.category = 'x') AS x FROM ${P} p`,
      /function mode/,
    ],
    [
      "bit_or over CASE",
      `SELECT bit_or(CASE WHEN p.category = 'x' THEN 1 ELSE 0 END) AS x FROM ${P} p`,
      /function bit_or/,
    ],
    [
      "a difference of filtered sums",
      `SELECT sum(p.amount) - sum(p.amount) FILTER (WHERE p.category = 'x') AS x FROM ${P} p`,
      /FILTER/,
    ],
    [
      "reservoir_quantile",
      `SELECT reservoir_quantile(p.amount, 1.0) AS x FROM ${P} p`,
      /function reservoir_quantile/,
    ],
    [
      "quantile_disc with a list",
      `SELECT quantile_disc(p.amount, [0.1, 0.2]) AS x FROM ${P} p`,
      /function quantile_disc/,
    ],
    ["unnest in the output", `SELECT unnest([1, 2]) AS x, count(*) AS n FROM ${P} p`, /function unnest/],
    ["list", `SELECT list(p.amount) AS x FROM ${P} p`, /function list/],
    [
      "a sum of an expression",
      `SELECT sum(CASE WHEN p.category = 'x' THEN p.amount END) AS x FROM ${P} p`,
      /exactly one column/,
    ],
    [
      "a measure as a group key",
      `SELECT p.amount AS amount, count(*) AS n FROM ${P} p GROUP BY p.amount`,
      /measure p.amount/,
    ],
    // Parameters and identities where k does not look.
    [
      "a parameter in the output",
      `SELECT sum(CASE WHEN p.category = $cat THEN 1 ELSE 0 END) AS x FROM ${P} p`,
      /function sum|exactly one column/,
      cat,
    ],
    [
      "a parameter in HAVING",
      `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY p.category HAVING bool_or(p.user_id = $who)`,
      /HAVING|bool_or|parameter/,
      who,
    ],
    [
      "ORDER BY with LIMIT",
      `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY p.category ORDER BY n LIMIT 1`,
      /ORDER BY/,
    ],
    [
      "QUALIFY",
      `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY p.category QUALIFY row_number() OVER () = 1`,
      /QUALIFY/,
    ],
    [
      "an EXISTS subquery on another dataset",
      `SELECT count(*) AS n FROM ${E} e WHERE EXISTS (SELECT 1 FROM ${P} p WHERE p.user_id = $who)`,
      /not allowed/,
      who,
    ],
    [
      "an IN subquery",
      `SELECT count(*) AS n FROM ${E} e WHERE e.segment IN (SELECT p.category FROM ${P} p)`,
      /not allowed/,
    ],
    [
      "the suppression oracle in ON",
      `SELECT e.segment AS segment, count(*) AS n FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id AND e.user_id = $who GROUP BY e.segment`,
      /parameter \$who may only be used in the top-level WHERE/,
      who,
    ],
    [
      "an identity compared with a parameter",
      `SELECT count(*) AS n FROM ${P} p WHERE p.user_id = $who`,
      /dimension column, not p.user_id/,
      who,
    ],
    [
      "an identity compared with a literal",
      `SELECT count(*) AS n FROM ${P} p WHERE p.user_id < '8'`,
      /identity column p.user_id/,
    ],
    [
      "a parameter in a scalar",
      `SELECT count(*) AS n FROM ${P} p WHERE left(p.category, 1) = $cat`,
      /compared with a dimension column/,
      cat,
    ],
    [
      "a parameter of the wrong type",
      `SELECT count(*) AS n FROM ${P} p WHERE p.category = $n`,
      /BIGINT.*VARCHAR/,
      [{ name: "n", type: "BIGINT" }],
    ],
    // Shapes outside the grammar.
    ["a subquery in FROM", `SELECT count(*) AS n FROM (SELECT * FROM ${P}) s`, /FROM may only join/],
    ["a CTE", `WITH s AS (SELECT * FROM ${P}) SELECT count(*) AS n FROM s`, /custom rule/],
    ["a comma join", `SELECT count(*) AS n FROM ${P} p, ${E} e WHERE p.user_id = e.user_id`, /comma/],
    [
      "a cross join",
      `SELECT count(*) AS n FROM ${P} p CROSS JOIN ${E} e`,
      /cross joins|joins are not allowed/,
    ],
    [
      "an ASOF join",
      `SELECT count(*) AS n FROM ${P} p ASOF JOIN ${E} e ON p.user_id = e.user_id AND p.purchase_ts >= e.exposure_ts`,
      /asof/,
    ],
    [
      "a full join",
      `SELECT count(*) AS n FROM ${P} p FULL JOIN ${E} e ON p.user_id = e.user_id`,
      /outer|full/,
    ],
    ["USING", `SELECT count(*) AS n FROM ${P} p JOIN ${E} e USING (user_id)`, /USING/],
    [
      "a join without a key equality",
      `SELECT count(*) AS n FROM ${P} p JOIN ${E} e ON p.purchase_ts > e.exposure_ts`,
      /needs an equality/,
    ],
    [
      "a join keyed on a dimension",
      `SELECT count(*) AS n FROM ${P} p JOIN ${E} e ON p.category = e.segment`,
      /needs an equality/,
    ],
    ["GROUP BY ALL", `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY ALL`, /GROUP BY ALL/],
    ["GROUP BY a position", `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY 1`, /position/],
    ["ROLLUP", `SELECT e.segment AS segment, count(*) AS n FROM ${E} e GROUP BY ROLLUP(e.segment)`, /ROLLUP/],
    [
      "a window",
      `SELECT e.segment AS segment, sum(count(*)) OVER () AS n FROM ${E} e GROUP BY e.segment`,
      /window functions/,
    ],
    [
      "SELECT DISTINCT",
      `SELECT DISTINCT e.segment AS segment, count(*) AS n FROM ${E} e GROUP BY e.segment`,
      /DISTINCT/,
    ],
    ["a set operation", `SELECT count(*) AS n FROM ${P} p UNION ALL SELECT count(*) FROM ${E} e`, /UNION/],
    ["SELECT *", `SELECT * FROM ${P} p`, /\* is not allowed/],
    ["an output without an alias", `SELECT count(*) FROM ${P} p`, /alias/],
    [
      "a non-aggregate output",
      `SELECT p.category AS segment FROM ${P} p`,
      /neither a GROUP BY expression nor an aggregate|aggregates/,
    ],
    [
      "lpad with a wide width",
      `SELECT lpad(e.segment, 100000000, '.') AS x, count(*) AS n FROM ${E} e GROUP BY lpad(e.segment, 100000000, '.')`,
      /function lpad/,
    ],
    [
      "repeat",
      `SELECT repeat(e.segment, 1000) AS x, count(*) AS n FROM ${E} e GROUP BY repeat(e.segment, 1000)`,
      /function repeat/,
    ],
    [
      "a cast to a list",
      `SELECT CAST(e.segment AS VARCHAR[]) AS x, count(*) AS n FROM ${E} e GROUP BY CAST(e.segment AS VARCHAR[])`,
      /scalar/,
    ],
    [
      "hash of the identity",
      `SELECT hash(e.user_id) AS x, count(*) AS n FROM ${E} e GROUP BY hash(e.user_id)`,
      /function hash|identity/,
    ],
    ["range()", `SELECT count(*) AS n FROM range(10)`, /FROM may only join/],
    ["read_csv", `SELECT count(*) AS n FROM read_csv('/etc/passwd')`, /FROM may only join/],
    ["getenv", `SELECT count(*) AS n FROM ${P} p WHERE p.category = getenv('HOME')`, /function getenv/],
    ["a schema-qualified table", `SELECT count(*) AS n FROM information_schema.tables`, /qualified/],
    ["an unknown table", `SELECT count(*) AS n FROM customers c`, /unknown table/],
    ["an undeclared column", `SELECT count(p.rowid) AS n FROM ${P} p`, /not a column/],
    ["a table alias that is a column name", `SELECT count(*) AS n FROM ${P} amount`, /also a column name/],
    [
      "an output outside allowedColumns",
      `SELECT p.category AS category, count(*) AS n FROM ${P} p GROUP BY p.category`,
      /allowedColumns/,
    ],
    ["an undeclared parameter", `SELECT count(*) AS n FROM ${P} p WHERE p.category = $cat`, /not declared/],
    ["a positional parameter", `SELECT count(*) AS n FROM ${P} p WHERE p.category = ?`, /not declared/],
    ["COPY", `COPY ${P} TO '/tmp/x.csv'`, /single SELECT/],
    ["ATTACH", "ATTACH '/tmp/x.db'", /single SELECT/],
    ["PRAGMA", "PRAGMA threads=4", /single SELECT/],
    // Whether a row appears may hinge only on its number of people, and nothing may fail on a count.
    [
      "HAVING on a sum",
      `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY p.category HAVING sum(p.amount) > 60000`,
      /HAVING may only compare count\(DISTINCT/,
    ],
    [
      "HAVING on a row count",
      `SELECT p.category AS segment, count(*) AS n FROM ${P} p GROUP BY p.category HAVING count(*) >= 37`,
      /HAVING may only compare count\(DISTINCT/,
    ],
    [
      "an integer cast of an aggregate",
      `SELECT p.category AS segment, 2147483647 * CAST(count(*) AS INTEGER) AS n FROM ${P} p GROUP BY p.category`,
      /casts of aggregates may only be to DOUBLE/,
    ],
    [
      "an integer constant beyond 2^53",
      `SELECT p.category AS segment, count(*) + 9007199254740993 AS n FROM ${P} p GROUP BY p.category`,
      /beyond ±2\^53/,
    ],
    [
      "the hidden-column prefix as an output name",
      `SELECT count(*) AS __cleanroom_k0 FROM ${P} p`,
      /reserved prefix|allowedColumns/,
    ],
    ["two statements", `SELECT count(*) AS n FROM ${P} p; SELECT count(*) AS n FROM ${P} p`, /exactly one/],
    ["unparseable SQL", `SELEC count(*) FROM ${P}`, /single SELECT/],
  ];
  it.each(refusals)("refuses %s", async (_name, sql, reason, parameters = []) => {
    await expectRefused(query(sql, { parameters }), reason);
  });

  it("refuses a declared parameter the SQL does not use", async () => {
    const q = query(`SELECT count(*) AS n FROM ${P} p`, { parameters: cat });
    await expectRefused(q, /never uses/);
  });

  it("admits min/max only where the owner allowed them, on numeric measures", async () => {
    const contract = structuredClone(useCaseContract);
    contract.datasets[0]!.analysis.measures[0]!.aggregates.push("max");
    await expect(check(query(`SELECT max(p.amount) AS x FROM ${P} p`), contract)).resolves.toBeUndefined();
    await expectRefused(query(`SELECT min(p.amount) AS x FROM ${P} p`), /min of p.amount/, contract);
  });

  it("refuses a column with no analysis role", async () => {
    const contract = structuredClone(useCaseContract);
    contract.datasets[1]!.analysis.dimensions = ["segment"];
    await expectRefused(
      query(`SELECT count(*) AS n FROM ${E} e WHERE e.arm = 'x'`),
      /no analysis role/,
      contract,
    );
  });
});

describe("custom rule walls", () => {
  const custom = (sql: string): ApprovedQuery =>
    query(sql, {
      policy: {
        kind: "custom",
        minDistinctIdentities: 50,
        allowedColumns: ["n"],
        dp: {
          epsilon: 1,
          budget: 5,
          groups: "single",
          maxRowsPerIdentity: 1,
          columns: [{ name: "n", kind: "count" }],
        },
      },
    });
  const refusals: [string, string, RegExp][] = [
    [
      "read_csv in a subquery",
      `SELECT count(*) AS n FROM ${P} p WHERE p.category IN (SELECT * FROM read_csv('/x'))`,
      /table functions/,
    ],
    ["range()", `SELECT count(*) AS n FROM range(10)`, /table functions/],
    ["a system table function", `SELECT count(*) AS n FROM duckdb_tables()`, /table functions/],
    [
      "a CTE shadowing a dataset",
      `WITH ${P} AS (SELECT 1 AS amount) SELECT count(*) AS n FROM ${E}`,
      /shadow/,
    ],
    ["getenv", `SELECT count(*) AS n FROM ${P} p WHERE p.category = getenv('HOME')`, /function not allowed/],
    ["an undeclared column", `SELECT count(rowid) AS n FROM ${P}`, /unknown column/],
    ["a positional reference", `SELECT count(#1) AS n FROM ${P}`, /positional/],
    ["the reserved prefix", `SELECT count(*) AS n FROM ${P} __cleanroom_t0`, /reserved/],
    // A scalar DuckDB cannot interrupt, inflated past the memory limit by a literal or parameter.
    [
      "lpad",
      `SELECT count(*) AS n FROM ${P} p WHERE length(lpad(p.category, 200000000, '.')) > 0`,
      /function lpad/,
    ],
    [
      "repeat",
      `SELECT count(*) AS n FROM ${P} p WHERE length(repeat(p.category, 100000000)) > 0`,
      /function repeat/,
    ],
    [
      "string_agg",
      `SELECT count(*) AS n FROM (SELECT string_agg(p.category, ',') AS s FROM ${P} p) x`,
      /function string_agg/,
    ],
    [
      "list building",
      `SELECT count(*) AS n FROM ${P} p WHERE len(list_value(p.category)) > 0`,
      /function (len|list_value)/,
    ],
  ];
  it.each(refusals)("refuses %s", async (_name, sql, reason) => {
    await expectRefused(custom(sql), reason);
  });
});
