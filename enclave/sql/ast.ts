/**
 * DuckDB's own parser, used through json_serialize_sql / json_deserialize_sql, plus the few
 * generic helpers the checker and the policy rewrite share. The SQL text is passed as a bound
 * value, never spliced.
 */
import type { DuckDBConnection } from "@duckdb/node-api";

/** A node of DuckDB's serialised parse tree (an open JSON object). */
export type AstNode = { [key: string]: unknown };

export interface ParsedSql {
  error: boolean;
  statements?: { node: AstNode; named_param_map?: unknown }[];
}

export function isNode(v: unknown): v is AstNode {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

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

/** Calls `visit` on every object in the tree, depth first, parents before children. */
export function walk(node: unknown, visit: (n: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, visit);
  } else if (isNode(node)) {
    visit(node);
    for (const child of Object.values(node)) walk(child, visit);
  }
}

/** A function-call expression node as the parser emits it. */
export function functionCall(name: string, args: AstNode[], distinct: boolean, alias: string): AstNode {
  return {
    class: "FUNCTION",
    type: "FUNCTION",
    alias,
    query_location: 0,
    function_name: name,
    schema: "",
    children: args,
    filter: null,
    order_bys: { type: "ORDER_MODIFIER", orders: [] },
    distinct,
    is_operator: false,
    export_state: false,
    catalog: "",
  };
}

export function columnRef(names: string[]): AstNode {
  return { class: "COLUMN_REF", type: "COLUMN_REF", alias: "", query_location: 0, column_names: names };
}
