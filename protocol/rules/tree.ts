/**
 * DuckDB's serialised parse tree (json_serialize_sql) as plain JSON, and the generic helpers that
 * the analysis rules, the enclave's rewrites and the review share. Pure: no engine here.
 */

/** A node of DuckDB's serialised parse tree (an open JSON object). */
export type AstNode = { [key: string]: unknown };

export interface ParsedSql {
  error: boolean;
  statements?: { node: AstNode; named_param_map?: unknown }[];
}

export function isNode(v: unknown): v is AstNode {
  return typeof v === "object" && v !== null && !Array.isArray(v);
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

/** The node with alias and query location removed, as text: equal text means the same expression. */
export function shape(node: unknown): string {
  return JSON.stringify(node, (key, value) =>
    key === "alias" || key === "query_location" ? undefined : value,
  );
}

export const lower = (s: unknown): string => String(s).toLowerCase();
