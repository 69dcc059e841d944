/**
 * The custom rule's rewrite (enclave/sql/dp-rewrite.ts customSql) on a throwaway engine, judged by
 * effect on two worlds that differ in one person (the victim): whatever the SQL does across
 * people (a WHERE subquery on another dataset, a join, a self-join, renamed columns, a CTE), the
 * exact pre-noise aggregates move by at most maxRowsPerIdentity rows (times the clamp for sums);
 * "public" groups release exactly the declared domain; whole-row, struct and identity keys and
 * shapes outside the rule are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyDp } from "../../enclave/dp/apply.js";
import { seededRng } from "../../enclave/dp/random.js";
import { parseSql } from "../../enclave/sql/ast.js";
import { checkDpSpec, customSql, DP_THRESHOLD_COLUMN, dpSpecOf } from "../../enclave/sql/dp-rewrite.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { createTypedTable } from "../../enclave/sql/ingest.js";
import type { ApprovedQuery, DpPolicy, ParameterType } from "../../protocol/contract/types.js";
import { dataset, everyUnit } from "../sql/helpers.js";

const M = 3;
const CLAMP = { lower: 0, upper: 100 };
const K = 10;

const purchases = dataset(
  "purchases",
  "advertiser",
  { user_id: "VARCHAR", amount: "DOUBLE", category: "VARCHAR" },
  { dimensions: ["category"], measures: [{ column: "amount", aggregates: ["sum"] }] },
);

const exposures = dataset(
  "exposures",
  "publisher",
  { user_id: "VARCHAR", age_band: "VARCHAR", segment: "VARCHAR" },
  { dimensions: ["age_band", "segment"] },
);

/** A third dataset whose identities are numbers: units meet the others' as text. */
const loyalty = dataset(
  "loyalty",
  "advertiser",
  { member: "BIGINT", points: "BIGINT" },
  { measures: [{ column: "points", aggregates: ["sum"] }] },
);

const datasets = [purchases, exposures, loyalty];
const VICTIM = "victim";
const BANDS = ["18-34", "35-49", "50-64"];

/** 200 people with 1-2 purchases and 1-3 exposures; a few rows with a NULL identity. */
function baseRows(): Record<string, string[]> {
  const p: string[] = [];
  const e: string[] = [];
  const l: string[] = [];
  for (let i = 0; i < 200; i++) {
    const u = `'u${i}'`;
    for (let j = 0; j <= i % 2; j++)
      p.push(`(${u}, ${10 * (1 + (i % 3))}, '${i % 2 ? "shoes" : "apparel"}')`);
    for (let j = 0; j <= i % 3; j++) e.push(`(${u}, '${BANDS[i % 3]}', '${j ? "news" : "sports"}')`);
    l.push(`(${i}, ${i % 50})`);
  }
  p.push("(NULL, 50, 'shoes')", "(NULL, 50, 'shoes')");
  e.push("(NULL, '18-34', 'news')");
  return { purchases: p, exposures: e, loyalty: l };
}

/** The victim: ten purchases of 500 in ten categories at one unique amount, ten exposures. */
function victimRows(): Record<string, string[]> {
  return {
    purchases: Array.from({ length: 10 }, (_, i) => `('${VICTIM}', 123.45, 'cat${i}')`),
    exposures: Array.from({ length: 10 }, () => `('${VICTIM}', '65+', 'sports')`),
    loyalty: [],
  };
}

async function world(withVictim: boolean): Promise<SqlEngine> {
  const engine = await openEngine({ memoryLimit: "256MB", threads: 2 });
  const rows = baseRows();
  const extra = withVictim ? victimRows() : { purchases: [], exposures: [], loyalty: [] };
  for (const d of datasets) {
    await createTypedTable(engine.connection, d.id, d.columns);
    const values = [...rows[d.id]!, ...extra[d.id]!];
    if (values.length) await engine.connection.run(`INSERT INTO ${d.id} VALUES ${values.join(", ")}`);
  }
  return engine;
}

function custom(
  sql: string,
  dp: Partial<DpPolicy> & Pick<DpPolicy, "columns">,
  parameters: Record<string, ParameterType> = {},
): ApprovedQuery {
  const policy: DpPolicy = {
    epsilon: 1,
    budget: 10,
    groups: "single",
    maxRowsPerIdentity: M,
    ...(dp.columns.some((c) => c.kind === "sum") ? { clamp: CLAMP } : {}),
    ...dp,
  };
  return {
    id: "q",
    sql,
    parameters: Object.entries(parameters).map(([name, type]) => ({ name, type })),
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: { kind: "custom", minDistinctIdentities: K, allowedColumns: [], dp: policy },
  };
}

async function rewrite(engine: SqlEngine, query: ApprovedQuery) {
  const parsed = await parseSql(engine.connection, query.sql);
  return customSql(engine.connection, { query, parsed, tables: [], datasets });
}

/** The exact (pre-noise) rewritten result: columns with types, JSON rows, hidden count. */
async function exact(engine: SqlEngine, query: ApprovedQuery, params: Record<string, string> = {}) {
  const { sql, hidden } = await rewrite(engine, query);
  const reader = await engine.connection.runAndReadAll(everyUnit(sql), params);
  const names = reader.columnNames();
  const types = reader.columnTypes().map(String);
  return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows: reader.getRowsJson(), hidden };
}

/** The released result: exact rows through dpSpecOf / checkDpSpec / applyDp with a fixed seed. */
async function release(engine: SqlEngine, query: ApprovedQuery, seed: string) {
  const { columns, rows, hidden } = await exact(engine, query);
  const dp = query.policy.dp!;
  const spec = dpSpecOf(dp, K, hidden ? columns[columns.length - 1]!.name : undefined);
  checkDpSpec(query.id, spec, columns);
  return applyDp({ columns, rows }, spec, seededRng(seed));
}

let a: SqlEngine; // without the victim
let b: SqlEngine; // with the victim
beforeAll(async () => {
  [a, b] = await Promise.all([world(false), world(true)]);
});
afterAll(() => {
  a.close();
  b.close();
});

/** |single-row aggregate in b - in a| for column `col`. */
async function moved(query: ApprovedQuery, col = 0, params: Record<string, string> = {}): Promise<number> {
  const [x, y] = await Promise.all([exact(a, query, params), exact(b, query, params)]);
  expect(x.rows).toHaveLength(1);
  expect(y.rows).toHaveLength(1);
  return Math.abs(Number(y.rows[0]![col] ?? 0) - Number(x.rows[0]![col] ?? 0));
}

const count = [{ name: "n", kind: "count" as const }];
const total = [{ name: "s", kind: "sum" as const }];

describe("one person moves at most maxRowsPerIdentity rows, over the whole query", () => {
  it("a WHERE subquery on another dataset that switches every row on for the victim", async () => {
    // Before: bounds per base table, so the victim's presence in purchases let all ~400 exposure
    // rows in. Now each unit's exposures meet only that unit's purchases.
    const sql = `SELECT count(*) AS n FROM exposures e
      WHERE EXISTS (SELECT 1 FROM purchases p WHERE p.user_id = $victim)`;
    const q = custom(sql, { columns: count }, { victim: "VARCHAR" });
    expect(await moved(q, 0, { victim: VICTIM })).toBeLessThanOrEqual(M);
    expect(await moved(q, 0, { victim: VICTIM })).toBeGreaterThan(0);
  });

  it("a cross-person join multiplies nobody's rows: counts move by at most m, sums by m x clamp", async () => {
    const join = "FROM exposures e JOIN purchases p ON p.category <> e.segment";
    expect(await moved(custom(`SELECT count(*) AS n ${join}`, { columns: count }))).toBeLessThanOrEqual(M);
    const sum = await moved(custom(`SELECT sum(p.amount) AS s ${join}`, { columns: total }));
    expect(sum).toBeLessThanOrEqual(M * CLAMP.upper);
    expect(sum).toBeGreaterThan(0);
  });

  it("a self-join, a CTE read twice and a scalar subquery on the victim are bounded too", async () => {
    const queries = [
      "SELECT count(*) AS n FROM purchases p1 JOIN purchases p2 ON true",
      `WITH v AS (SELECT count(*) AS c FROM purchases WHERE user_id = 'victim')
       SELECT count(*) AS n FROM exposures e, v v1, v v2 WHERE v1.c + v2.c > 0`,
      `SELECT count(*) AS n FROM exposures e
       WHERE (SELECT count(*) FROM purchases p WHERE p.amount = 123.45) > 0`,
      `WITH v AS MATERIALIZED (SELECT count(*) AS c FROM purchases WHERE amount = 123.45)
       SELECT count(*) AS n FROM exposures e, v WHERE v.c > 0`,
    ];
    for (const sql of queries) expect(await moved(custom(sql, { columns: count }))).toBeLessThanOrEqual(M);
  });

  it("renamed columns (FROM t AS p(a, b, c)) are bounded", async () => {
    const renamed = "FROM purchases AS p(a, b, c)";
    expect(await moved(custom(`SELECT count(*) AS n ${renamed}`, { columns: count }))).toBe(M);
    expect(await moved(custom(`SELECT sum(p.b) AS s ${renamed}`, { columns: total }))).toBe(M * 100);
    const both = `SELECT count(x.k) AS n FROM purchases AS p(a, b, c) JOIN exposures AS x(k, l, m) ON x.k <> p.a`;
    expect(await moved(custom(both, { columns: count }))).toBeLessThanOrEqual(M);
  });

  it("count-distinct counts units: a column renamed to look like the identity adds at most 1", async () => {
    const sql =
      "SELECT count(DISTINCT s.user_id) AS users FROM (SELECT category AS user_id FROM purchases) s";
    const q = custom(sql, { columns: [{ name: "users", kind: "count-distinct" }] });
    expect(await moved(q)).toBe(1);
  });

  it("a cast that fails on one person's value gives NULL, not a failed run (an oracle)", async () => {
    const sql = "SELECT count(*) AS n FROM purchases p WHERE CAST(p.category AS INTEGER) IS NULL";
    expect((await exact(b, custom(sql, { columns: count }))).rows).toEqual([[String(300 + M)]]);
  });

  it("rows with a NULL identity never count", async () => {
    const { rows } = await exact(a, custom("SELECT count(*) AS n FROM purchases", { columns: count }));
    expect(Number(rows[0]![0])).toBe(300); // 200 people, every other with two purchases; not the NULLs
  });

  it("identities of different types meet as text: one number and one string are one person", async () => {
    const sql = "SELECT count(*) AS n FROM purchases p JOIN loyalty l ON true";
    // Units u0..u199 (text) and 0..199 (numbers) never coincide: no row joins.
    expect((await exact(a, custom(sql, { columns: count }))).rows).toEqual([["0"]]);
    const same = "SELECT count(*) AS n FROM loyalty l JOIN loyalty r ON l.points = r.points";
    expect((await exact(a, custom(same, { columns: count }))).rows).toEqual([["200"]]);
  });
});

describe("the rewrite keeps an honest query's meaning (nobody above the bound)", () => {
  it("a per-person IN subquery, a CTE and a window give the plain SQL's answers", async () => {
    const cases: [string, string][] = [
      [
        `SELECT e.age_band AS band, count(DISTINCT e.user_id) AS users FROM exposures e
         WHERE e.user_id IN (SELECT p.user_id FROM purchases p WHERE p.category = 'shoes') GROUP BY e.age_band`,
        `SELECT e.age_band, count(DISTINCT e.user_id) FROM exposures e
         WHERE e.user_id IN (SELECT p.user_id FROM purchases p WHERE p.category = 'shoes') GROUP BY e.age_band`,
      ],
      [
        `WITH firsts AS (SELECT user_id, amount, row_number() OVER (PARTITION BY user_id ORDER BY amount) AS rn
         FROM purchases) SELECT f.rn AS band, count(DISTINCT f.user_id) AS users FROM firsts f GROUP BY f.rn`,
        `SELECT rn, count(DISTINCT user_id) FROM (SELECT user_id, row_number() OVER
         (PARTITION BY user_id ORDER BY amount) AS rn FROM purchases WHERE user_id IS NOT NULL) GROUP BY rn`,
      ],
    ];
    for (const [sql, plain] of cases) {
      const q = custom(sql, {
        groups: "private",
        columns: [{ name: "users", kind: "count-distinct" }],
      });
      const got = (await exact(a, q)).rows.map((r) => [String(r[0]), String(r[1])]).sort();
      const want = (await a.connection.runAndReadAll(plain))
        .getRowsJson()
        .map((r) => r.map(String))
        .sort();
      expect(got).toEqual(want);
    }
  });

  it("outputs are the select list in order, then the hidden distinct-unit count for private groups", async () => {
    const q = custom("SELECT count(*) AS n, e.segment AS segment FROM exposures e GROUP BY e.segment", {
      groups: "private",
      columns: count,
    });
    const { columns, rows, hidden } = await exact(b, q);
    expect(hidden).toBe(1);
    expect(columns).toEqual([
      { name: "n", type: "BIGINT" },
      { name: "segment", type: "VARCHAR" },
      { name: DP_THRESHOLD_COLUMN, type: "BIGINT" },
    ]);
    const sports = rows.find((r) => r[1] === "sports")!;
    expect(sports).toEqual([String(200 + M), "sports", "201"]); // the victim's ten rows count three times
  });

  it("sums are clamped, NULL inputs ignored, and carried as exact fixed point", async () => {
    const q = custom("SELECT sum(p.amount - 60) AS s FROM purchases p WHERE p.user_id = 'u1'", {
      columns: [{ name: "s", kind: "sum", decimals: 2 }],
      clamp: { lower: -5, upper: 100 },
    });
    const { columns, rows } = await exact(a, q);
    expect(columns[0]!.type).toBe("DECIMAL(38,2)");
    expect(rows).toEqual([["-10.00"]]); // two purchases of 20: each 20 - 60 = -40, clamped to -5
    const none = custom("SELECT sum(NULL::DOUBLE) AS s FROM purchases p", {
      columns: [{ name: "s", kind: "sum" }],
      clamp: { lower: 1, upper: 2 },
    });
    expect((await exact(a, none)).rows).toEqual([[null]]);
  });
});

describe('"public" groups release exactly the declared domain', () => {
  it("GROUP BY amount: the victim's unique amount never appears; declared amounts always do", async () => {
    const q = custom("SELECT p.amount AS amount, count(*) AS n FROM purchases p GROUP BY p.amount", {
      groups: "public",
      columns: count,
      domain: [{ column: "amount", values: [10, 30, 77] }],
    });
    const [x, y] = await Promise.all([release(a, q, "pub"), release(b, q, "pub")]);
    expect(x.rows.map((r) => r[0])).toEqual([10, 30, 77]);
    expect(y.rows.map((r) => r[0])).toEqual([10, 30, 77]);
    // Exact, the victim's 123.45 is there; released, it is not.
    expect((await exact(b, q)).rows.some((r) => r[0] === 123.45)).toBe(true);
    // Same seed, same data in the declared groups: the same release.
    expect(y.rows).toEqual(x.rows);
    expect(x.delta).toBe(0);
  });

  it("two key columns: their cross product, BIGINT keys matched as numbers", async () => {
    const q = custom(
      `SELECT e.segment AS segment, CAST(length(e.age_band) AS BIGINT) AS len, count(*) AS n
       FROM exposures e GROUP BY e.segment, CAST(length(e.age_band) AS BIGINT)`,
      {
        groups: "public",
        columns: count,
        domain: [
          { column: "segment", values: ["sports", "tv"] },
          { column: "len", values: [5, 3] },
        ],
        epsilon: 1e5,
      },
    );
    const out = await release(a, q, "two");
    expect(out.rows.map((r) => [r[0], r[1]])).toEqual([
      ["sports", "5"],
      ["sports", "3"],
      ["tv", "5"],
      ["tv", "3"],
    ]);
    // epsilon 1e5: noise is 0 here; "sports"/5 holds everyone's first exposure, the rest are empty.
    expect(out.rows.map((r) => r[2])).toEqual(["200", "0", "0", "0"]);
  });

  it("refuses a domain that does not cover the keys or fit their types", async () => {
    const base = "SELECT p.category AS category, p.amount AS amount, count(*) AS n FROM purchases p";
    const grouped = `${base} GROUP BY p.category, p.amount`;
    const refusals: [Partial<DpPolicy>, string][] = [
      [
        { domain: [{ column: "category", values: ["shoes"] }] },
        "dp: every group key column needs a declared domain",
      ],
      [
        {
          domain: [
            { column: "category", values: [1] },
            { column: "amount", values: [1] },
          ],
        },
        "dp: a domain value does not fit its key column's type",
      ],
    ];
    for (const [dp, reason] of refusals) {
      const q = custom(grouped, { groups: "public", columns: count, ...dp });
      await expect(release(a, q, "r")).rejects.toMatchObject({ code: "ERR_CONTRACT_QUERY", reason });
    }
  });
});

describe("keys that would carry raw rows or identities are refused", () => {
  const privateCount = { groups: "private" as const, columns: count };
  it.each([
    [
      "a table alias (the whole row)",
      "SELECT p AS p, count(*) AS n FROM purchases p GROUP BY p",
      "dp: a group key may not be a whole row",
    ],
    [
      "a CTE name",
      "WITH c AS (SELECT * FROM purchases) SELECT c AS c, count(*) AS n FROM c GROUP BY c",
      "dp: a group key may not be a whole row",
    ],
    [
      "the identity column",
      "SELECT p.user_id AS u, count(*) AS n FROM purchases p GROUP BY p.user_id",
      "dp: a group key may not be an identity column",
    ],
    [
      "an expression of the identity",
      "SELECT lower(user_id) AS u, count(*) AS n FROM purchases GROUP BY lower(user_id)",
      "dp: a group key may not be an identity column",
    ],
  ])("%s", async (_name, sql, reason) => {
    await expect(rewrite(a, custom(sql, privateCount))).rejects.toMatchObject({
      code: "ERR_CONTRACT_QUERY",
      reason,
    });
  });

  it("a struct or list key passes the rewrite but not the plan-time type check", async () => {
    for (const key of ["{'a': p.amount, 'c': p.category}", "[p.category]", "map([p.category], [p.amount])"]) {
      const q = custom(`SELECT ${key} AS k, count(*) AS n FROM purchases p GROUP BY ${key}`, privateCount);
      await expect(release(a, q, "s")).rejects.toMatchObject({
        code: "ERR_CONTRACT_QUERY",
        reason: "dp: a group key column must have a scalar type",
      });
    }
  });
});

describe("shapes outside the custom rule are refused", () => {
  const users = [{ name: "users", kind: "count-distinct" as const }];
  const grouped = { groups: "private" as const, columns: users };
  const from = "FROM exposures e";
  const refused: [string, string, Partial<DpPolicy> & Pick<DpPolicy, "columns">, string][] = [
    [
      "a set operation",
      `SELECT count(DISTINCT user_id) AS users ${from} UNION ALL SELECT count(DISTINCT user_id) AS users FROM purchases`,
      { columns: users },
      "dp: the query must be one plain SELECT (no set operation)",
    ],
    [
      "DISTINCT",
      `SELECT DISTINCT count(DISTINCT e.user_id) AS users ${from}`,
      { columns: users },
      "dp: SELECT DISTINCT is not allowed",
    ],
    [
      "ORDER BY",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment ORDER BY segment`,
      grouped,
      "dp: ORDER BY is not allowed (the enclave orders released rows)",
    ],
    [
      "LIMIT",
      `SELECT count(DISTINCT e.user_id) AS users ${from} LIMIT 1`,
      { columns: users },
      "dp: LIMIT and OFFSET are not allowed",
    ],
    [
      "HAVING",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment HAVING count(*) > 3`,
      grouped,
      "dp: HAVING is not allowed",
    ],
    [
      "QUALIFY",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment QUALIFY users > 1`,
      grouped,
      "dp: QUALIFY is not allowed",
    ],
    [
      "GROUP BY ALL",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY ALL`,
      grouped,
      "dp: GROUP BY ALL is not allowed",
    ],
    [
      "ROLLUP",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY ROLLUP (e.segment)`,
      grouped,
      "dp: GROUPING SETS, ROLLUP and CUBE are not allowed",
    ],
    [
      "a positional GROUP BY",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY 1`,
      grouped,
      "dp: GROUP BY positions are not allowed (repeat the expression)",
    ],
    [
      "an output without an alias",
      `SELECT e.segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment`,
      grouped,
      "dp: every output column needs an alias (AS name)",
    ],
    [
      "an undeclared aggregate",
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users, count(*) AS n ${from} GROUP BY e.segment`,
      grouped,
      "dp: every output column must be a dp column or a GROUP BY expression",
    ],
    [
      "a GROUP BY key that is not output",
      `SELECT count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment`,
      grouped,
      "dp: every GROUP BY expression must be an output column",
    ],
    [
      'groups "single" with a GROUP BY',
      `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users ${from} GROUP BY e.segment`,
      { columns: users },
      'dp: groups "single" exactly when there is no GROUP BY',
    ],
    [
      "a wrapped aggregate",
      `SELECT count(DISTINCT e.user_id) * 10 AS users ${from}`,
      { columns: users },
      "dp: a count-distinct column must be count(DISTINCT <identity column>)",
    ],
    [
      "count-distinct of a non-identity column",
      `SELECT count(DISTINCT e.segment) AS users ${from}`,
      { columns: users },
      "dp: a count-distinct column must be count(DISTINCT <identity column>)",
    ],
    [
      "a count with DISTINCT",
      `SELECT count(DISTINCT e.segment) AS n ${from}`,
      { columns: count },
      "dp: a count column must be count(*) or count(expression)",
    ],
    [
      "a sum declared over a count",
      `SELECT count(*) AS s ${from}`,
      { columns: total },
      "dp: a sum column must be sum(expression)",
    ],
    [
      "an aggregate FILTER",
      `SELECT count(*) FILTER (WHERE e.segment = 'news') AS n ${from}`,
      { columns: count },
      "dp: FILTER and ORDER BY inside a dp aggregate are not allowed",
    ],
    [
      "a dp column missing from the output",
      `SELECT count(*) AS m ${from}`,
      { columns: count },
      "dp: every output column must be a dp column or a GROUP BY expression",
    ],
    [
      "a CTE named with the enclave's prefix",
      `WITH __cleanroom_u AS (SELECT 'victim' AS __cleanroom_unit) SELECT count(*) AS n FROM __cleanroom_u, exposures e`,
      { columns: count },
      "dp: names starting with __cleanroom are reserved",
    ],
    [
      "no dataset at all",
      "SELECT count(*) AS n FROM (SELECT 1 AS x) t",
      { columns: count },
      "dp: the query must read a dataset",
    ],
  ];

  it.each(refused)("refuses %s", async (_name, sql, dp, reason) => {
    await expect(rewrite(a, custom(sql, dp))).rejects.toMatchObject({ code: "ERR_CONTRACT_QUERY", reason });
  });
});
