/**
 * DuckDB's own parser, used through json_serialize_sql / json_deserialize_sql (the tree helpers
 * live in protocol/rules/tree.ts). The SQL text is passed as a bound value, never spliced.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { type AstNode, type ParsedSql, walk } from "../../protocol/rules/tree.js";

export type { AstNode, ParsedSql } from "../../protocol/rules/tree.js";
export { columnRef, functionCall, isNode, walk } from "../../protocol/rules/tree.js";

/** Parses `sql` with DuckDB's parser. Non-SELECT statements come back with error: true. */
export async function parseSql(conn: DuckDBConnection, sql: string): Promise<ParsedSql> {
  const result = await conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
  // query_location offsets can exceed 2^53 (a "none" marker); they are irrelevant to us, and
  // zeroing them keeps the tree loss-free through JSON.parse and back for json_deserialize_sql.
  const text = String(result.getRows()[0]?.[0] ?? "").replace(/"query_location":\d+/g, '"query_location":0');
  return JSON.parse(text) as ParsedSql;
}

/** Renders a (possibly rewritten) parse tree back to SQL. */
export async function renderSql(conn: DuckDBConnection, parsed: ParsedSql): Promise<string> {
  const result = await conn.runAndReadAll("SELECT json_deserialize_sql($1::VARCHAR)", [
    JSON.stringify(parsed),
  ]);
  return String(result.getRows()[0]?.[0] ?? "");
}

/** Expression classes DuckDB's TRY cannot hold. */
const UNTRYABLE = new Set(["SUBQUERY", "WINDOW"]);

/**
 * `TRY(node)`, keeping its alias, when DuckDB can evaluate it so (no subquery, window or call of a
 * function in `aggregates` inside): an error on one row's value becomes NULL for that row instead
 * of failing the run, so whether a run fails never depends on one person's data. Otherwise `node`.
 */
export function withTry(node: AstNode, aggregates: ReadonlySet<string>): AstNode {
  let tryable = true;
  walk(node, (n) => {
    if (UNTRYABLE.has(String(n.class))) tryable = false;
    if (n.class === "FUNCTION" && aggregates.has(String(n.function_name).toLowerCase())) tryable = false;
  });
  if (!tryable || node.class === "COLUMN_REF" || node.class === "CONSTANT") return node;
  const alias = typeof node.alias === "string" ? node.alias : "";
  return {
    class: "OPERATOR",
    type: "OPERATOR_TRY",
    alias,
    query_location: 0,
    children: [{ ...node, alias: "" }],
  };
}
