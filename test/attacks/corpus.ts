/**
 * The attack corpus: attempts to get rows, small groups or secrets out of the room. Each case
 * names what it tries and what must happen: refused with a code, or neutralised (answered, but
 * with nothing an attacker wanted). Grow it by adding rows; attacks.test.ts runs them all.
 */
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import type { QueryBody } from "../../protocol/jose/messages.js";
import { CANARY } from "./room.js";

/** A query request by a party, against the loaded room. */
export interface RequestAttack {
  name: string;
  as: "advertiser" | "publisher";
  /** One request, or several in order (the last one's outcome is checked). */
  requests: QueryBody[];
  /** Refused with this code, or neutralised: answered, and `check` holds for the decoded rows. */
  expect: { refused: string } | { neutralised: (r: { rows: unknown[][]; suppressed: number }) => boolean };
}

/** A query smuggled into a contract: every party signed it, the enclave must still refuse it. */
export interface ContractAttack {
  name: string;
  sql: string;
  kind?: "aggregate" | "row-level";
  allowedColumns: string[];
  parameters?: ApprovedQuery["parameters"];
  refused: string;
}

const q = (queryId: string, params: QueryBody["params"] = {}): QueryBody => ({
  queryId,
  params,
  resultFormat: "json",
});
const empty = { neutralised: (r: { rows: unknown[][] }) => r.rows.length === 0 };
const REFUSED_QUERY = "ERR_CONTRACT_QUERY";

export const REQUEST_ATTACKS: RequestAttack[] = [
  // Unapproved access.
  {
    name: "unapproved query id",
    as: "advertiser",
    requests: [q("select-star")],
    expect: { refused: "ERR_QUERY_NOT_APPROVED" },
  },
  {
    name: "query id with SQL in it",
    as: "advertiser",
    requests: [q("by-category; SELECT * FROM advertiser_purchases")],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "runner not allowed",
    as: "publisher",
    requests: [q("last-touch", { start: "2024-04-01", end: "2024-05-01" })],
    expect: { refused: "ERR_NOT_PERMITTED" },
  },
  // SQL, file and network access through parameters: bound as values, never spliced.
  {
    name: "SQL injection in VARCHAR",
    as: "advertiser",
    requests: [q("closed-loop", { campaign: "x' OR '1'='1" })],
    expect: empty,
  },
  {
    name: "stacked statement in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "shoes'; SELECT * FROM advertiser_purchases; --" })],
    expect: empty,
  },
  {
    name: "file function in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "' || (SELECT content FROM read_text('/etc/passwd')) || '" })],
    expect: empty,
  },
  {
    name: "network function in VARCHAR",
    as: "advertiser",
    requests: [
      q("by-category", { category: "x' UNION SELECT * FROM read_csv('https://example.com/a.csv') --" }),
    ],
    expect: empty,
  },
  {
    name: "SQL in a DATE parameter",
    as: "advertiser",
    requests: [q("last-touch", { start: "2024-04-01' OR 1=1 --", end: "2024-05-01" })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "SQL in a DOUBLE parameter (as text)",
    as: "publisher",
    requests: [q("spend-band", { min: "0 OR 1=1" as unknown as number, max: 1e9 })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "non-finite DOUBLE",
    as: "publisher",
    requests: [q("spend-band", { min: Number.NaN, max: 1e9 })],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "extra parameter",
    as: "advertiser",
    requests: [q("by-category", { category: "shoes", user_id: "x" })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "missing parameter",
    as: "advertiser",
    requests: [q("by-category")],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "NUL and control bytes in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "\u0000\u001b[2J" })],
    expect: empty,
  },
  // Isolating one person with an approved query: the group is below k and suppressed.
  {
    name: "canary category isolates one buyer",
    as: "advertiser",
    requests: [q("by-category", { category: CANARY.category })],
    expect: { neutralised: (r) => r.rows.length === 0 && r.suppressed === 1 },
  },
  {
    name: "amount band isolates one buyer",
    as: "publisher",
    requests: [q("spend-band", { min: 98765, max: 98766 })],
    expect: empty,
  },
  {
    name: "identity parameter isolates one person",
    as: "advertiser",
    requests: [q("segment-of", { user: CANARY.publisherId, segment: "" })],
    expect: { neutralised: (r) => r.rows.length === 0 && r.suppressed === 1 },
  },
  // Differencing: two runs whose groups differ by one person. maxRuns stops the second.
  {
    name: "differencing across runs (maxRuns)",
    as: "publisher",
    requests: [q("spend-band-once", { max: 1e9 }), q("spend-band-once", { max: 98765 })],
    expect: { refused: "ERR_MAX_RUNS" },
  },
  // Error-message exfiltration: the engine's message would quote the row value.
  {
    name: "cast error quoting a row value",
    as: "publisher",
    requests: [q("cast-error", { n: 0 })],
    expect: { refused: "ERR_QUERY_FAILED" },
  },
  {
    name: "BIGINT out of range",
    as: "publisher",
    requests: [q("cast-error", { n: "99999999999999999999" })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  // Resource exhaustion.
  {
    name: "huge VARCHAR parameter (8 KiB)",
    as: "advertiser",
    requests: [q("by-category", { category: "A".repeat(8192) })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "huge request (600 KiB)",
    as: "advertiser",
    requests: [q("by-category", { category: "A".repeat(600 * 1024) })],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "too many parameters",
    as: "advertiser",
    requests: [q("by-category", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, i])))],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "cartesian join",
    as: "publisher",
    requests: [q("cartesian", { n: 0 })],
    expect: { refused: "ERR_QUERY_TIMEOUT" },
  },
  // Rolling the room back or asking for other formats.
  {
    name: "forged ledger head",
    as: "advertiser",
    requests: [
      { ...q("by-category", { category: "shoes" }), ledgerHead: { seq: 99_999, hash: "ab".repeat(32) } },
    ],
    expect: { refused: "ERR_LEDGER_ROLLBACK" },
  },
  {
    name: "unknown result format",
    as: "advertiser",
    requests: [{ ...q("by-category", { category: "shoes" }), resultFormat: "parquet" as "json" }],
    expect: { refused: "ERR_ENVELOPE" },
  },
];

const nested = (depth: number) => `${"(".repeat(depth)}p.amount${")".repeat(depth)}`;

export const CONTRACT_ATTACKS: ContractAttack[] = [
  {
    name: "row dump under an aggregate policy",
    sql: "SELECT * FROM advertiser_purchases",
    allowedColumns: ["user_id", "category"],
    refused: REFUSED_QUERY,
  },
  {
    name: "identity column grouped and output",
    sql: "SELECT p.user_id AS u, count(*) AS n FROM advertiser_purchases p GROUP BY p.user_id",
    allowedColumns: ["u", "n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "identity inside max()",
    sql: "SELECT max(p.user_id) AS u FROM advertiser_purchases p",
    allowedColumns: ["u"],
    refused: REFUSED_QUERY,
  },
  {
    name: "identity list aggregate",
    sql: "SELECT p.category AS c, list(p.user_id) AS ids FROM advertiser_purchases p GROUP BY p.category",
    allowedColumns: ["c", "ids"],
    refused: REFUSED_QUERY,
  },
  {
    name: "unapproved output column",
    sql: "SELECT p.category AS category, count(*) AS n FROM advertiser_purchases p GROUP BY p.category",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "undeclared column (rowid)",
    sql: "SELECT count(*) AS n FROM advertiser_purchases p WHERE p.rowid = 1",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "window function over suppressed groups",
    sql: "SELECT p.category AS c, count(*) OVER () AS n FROM advertiser_purchases p GROUP BY p.category",
    allowedColumns: ["c", "n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "ROLLUP subtotals",
    sql: "SELECT p.category AS c, count(*) AS n FROM advertiser_purchases p GROUP BY ROLLUP (p.category)",
    allowedColumns: ["c", "n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "UNION of two aggregates",
    sql: "SELECT count(*) AS n FROM advertiser_purchases UNION ALL SELECT count(*) AS n FROM publisher_exposures",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "read_csv of a local file",
    sql: "SELECT count(*) AS n FROM read_csv('/etc/passwd')",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "read_text in an expression",
    sql: "SELECT count(*) AS n FROM advertiser_purchases p WHERE p.category = (SELECT content FROM read_text('/etc/hostname'))",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "replacement scan of a URL",
    sql: "SELECT count(*) AS n FROM 'https://example.com/x.csv'",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "getenv",
    sql: "SELECT getenv('HOME') AS h, count(*) AS n FROM advertiser_purchases GROUP BY 1",
    allowedColumns: ["h", "n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "current_setting",
    sql: "SELECT current_setting('temp_directory') AS s, count(*) AS n FROM advertiser_purchases GROUP BY 1",
    allowedColumns: ["s", "n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "catalog function",
    sql: "SELECT count(*) AS n FROM duckdb_settings()",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "COPY TO a file",
    sql: "COPY advertiser_purchases TO '/tmp/leak.csv'",
    kind: "row-level",
    allowedColumns: ["user_id"],
    refused: REFUSED_QUERY,
  },
  {
    name: "ATTACH a database",
    sql: "ATTACH '/tmp/leak.db' AS leak",
    kind: "row-level",
    allowedColumns: ["x"],
    refused: REFUSED_QUERY,
  },
  {
    name: "SET a configuration",
    sql: "SET enable_external_access = true",
    kind: "row-level",
    allowedColumns: ["x"],
    refused: REFUSED_QUERY,
  },
  {
    name: "two statements",
    sql: "SELECT count(*) AS n FROM advertiser_purchases; DROP TABLE advertiser_purchases",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "INSTALL an extension",
    sql: "INSTALL httpfs",
    kind: "row-level",
    allowedColumns: ["x"],
    refused: REFUSED_QUERY,
  },
  {
    name: "recursive CTE (unbounded recursion)",
    sql: "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) AS n FROM advertiser_purchases p WHERE p.amount IN (SELECT i FROM r)",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "range() table function (row generator)",
    sql: "SELECT count(*) AS n FROM advertiser_purchases p, range(1000000000) t",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "deeply nested expression (30 000 levels)",
    sql: `SELECT count(*) AS n FROM advertiser_purchases p WHERE ${nested(30_000)} > 0`,
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "positional parameter",
    sql: "SELECT count(*) AS n FROM advertiser_purchases p WHERE p.category = ?",
    allowedColumns: ["n"],
    refused: REFUSED_QUERY,
  },
  {
    name: "reserved hidden-column alias",
    sql: "SELECT count(*) AS __cleanroom_k0 FROM advertiser_purchases",
    allowedColumns: ["__cleanroom_k0"],
    refused: REFUSED_QUERY,
  },
];

/** Aggregates that return the group's values themselves, not a summary: row-level data under k. */
CONTRACT_ATTACKS.push(
  ...[
    "string_agg(p.category, ',')",
    "list(p.category)",
    "array_agg(p.amount)",
    "histogram(p.category)",
    "list_distinct(list(p.category))",
  ].map(
    (expr): ContractAttack => ({
      name: `collecting aggregate ${expr.split("(")[0]}() releases every value of a group`,
      sql: `SELECT p.amount > 0 AS pos, ${expr} AS vals FROM advertiser_purchases p GROUP BY 1`,
      allowedColumns: ["pos", "vals"],
      refused: REFUSED_QUERY,
    }),
  ),
);

CONTRACT_ATTACKS.push({
  name: "top-n max() releases n values of a group",
  sql: "SELECT p.amount > 0 AS pos, max(p.amount, 1000) AS vals FROM advertiser_purchases p GROUP BY 1",
  allowedColumns: ["pos", "vals"],
  refused: REFUSED_QUERY,
});
