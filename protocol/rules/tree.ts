/**
 * DuckDB's serialised parse tree (json_serialize_sql) as plain JSON, and the generic helpers that
 * the analysis rules, the enclave's rewrites and the review share. Pure: no engine here.
 */

/** Column and alias names the enclave adds to approved SQL; approved SQL may not use the prefix. */
export const HIDDEN_PREFIX = "__cleanroom";

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

/**
 * An expression without its own alias (inner aliases, e.g. struct field names, stay) and without
 * query locations, as text: equal text means the same expression.
 */
export function shape(node: unknown): string {
  const own =
    typeof node === "object" && node !== null && !Array.isArray(node) ? { ...node, alias: "" } : node;
  return JSON.stringify(own, (key, value) => (key === "query_location" ? undefined : value));
}

/** The nodes of a list field (an absent or malformed field is empty). */
export const nodes = (v: unknown): AstNode[] => (Array.isArray(v) ? v.filter(isNode) : []);

/** The conjuncts of an AND tree (a node that is no AND is its own single conjunct). */
export function conjuncts(node: unknown): unknown[] {
  if (isNode(node) && node.class === "CONJUNCTION" && node.type === "CONJUNCTION_AND") {
    return nodes(node.children).flatMap(conjuncts);
  }
  return [node];
}

/** The AND of `parts` (one part is itself). */
export function conjunction(parts: AstNode[]): AstNode {
  if (parts.length === 1) return parts[0]!;
  return { class: "CONJUNCTION", type: "CONJUNCTION_AND", alias: "", query_location: 0, children: parts };
}

/** `a.x = b.y`: an equality of two column references (a join key). */
export function isColumnEquality(n: unknown): n is AstNode {
  return (
    isNode(n) &&
    n.class === "COMPARISON" &&
    n.type === "COMPARE_EQUAL" &&
    isNode(n.left) &&
    n.left.class === "COLUMN_REF" &&
    isNode(n.right) &&
    n.right.class === "COLUMN_REF"
  );
}

export const lower = (s: unknown): string => String(s).toLowerCase();
