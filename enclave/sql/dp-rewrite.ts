/**
 * What a differential-privacy policy adds to an aggregate query, on the parse tree: shape rules
 * that make the declared sensitivities true (one table in the top-level FROM, every output
 * column either a declared noised aggregate or a group key, nothing computed on exact
 * aggregates), and the rewrite that bounds contributions whatever the SQL says:
 *
 * - every dataset table the query reads, anywhere in the tree, becomes
 *   `(SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY <identity> ORDER BY <every column>)
 *   <= maxRowsPerIdentity) AS <alias>`: each identity keeps at most m rows of each table, chosen
 *   by a fixed order over that identity's own rows only;
 * - the input of every declared `sum` becomes `CAST(least(greatest(x, lower), upper) AS
 *   DECIMAL(18, decimals))`, the clamp range rounded inwards to that fixed point.
 *
 * docs/DIFFERENTIAL-PRIVACY.md ("Enforcement in the enclave") states the resulting semantics.
 */
import type { Json } from "@duckdb/node-api";
import type { DpColumn, DpPolicy } from "../../protocol/contract/types.js";
import { applyDp, type DpAggregateColumn, type DpSpec } from "../dp/apply.js";
import { clampBound, clampRange } from "../dp/contribution.js";
import { cryptoRng } from "../dp/random.js";
import { type AstNode, isNode, type ParsedSql, parseSql, walk } from "./ast.js";
import type { CheckedQuery, TableUse } from "./check.js";
import { quoteIdent } from "./engine.js";
import { QueryCheckError } from "./errors.js";
import { HIDDEN_PREFIX } from "./hidden.js";

/** Fixed-point sum inputs are DECIMAL(18, d); their sums (DECIMAL(38, d)) cannot overflow. */
const SUM_INPUT_DIGITS = 18;

/** Name of the hidden distinct-identity count the noisy threshold reads, when one is needed. */
export const DP_THRESHOLD_COLUMN = `${HIDDEN_PREFIX}_k0`;

const lower = (s: unknown): string => String(s).toLowerCase();

/** The node with alias and query location removed, as text: equal text means the same expression. */
function shape(node: unknown): string {
  return JSON.stringify(node, (key, value) =>
    key === "alias" || key === "query_location" ? undefined : value,
  );
}

function isFunction(node: unknown, names: string[]): node is AstNode {
  return isNode(node) && node.class === "FUNCTION" && names.includes(lower(node.function_name));
}

/**
 * Refuses (QueryCheckError) a DP query whose shape the declared mechanisms do not cover; returns
 * the top-level select items of the declared columns by name.
 */
export function checkDpShape(checked: CheckedQuery, dp: DpPolicy): Map<string, AstNode> {
  const { query, tables } = checked;
  const refuse = (reason: string): never => {
    throw new QueryCheckError(query.id, `dp: ${reason}`);
  };
  const root = checked.parsed.statements![0]!.node;
  // Per-table row bounds do not compose through a join (one person's rows can multiply).
  if (tables.length !== 1) refuse("the top-level FROM must be exactly one dataset table");
  if (root.having !== null && root.having !== undefined) refuse("HAVING is not allowed");
  const modifiers = Array.isArray(root.modifiers) ? (root.modifiers as AstNode[]) : [];
  if (modifiers.some((m) => m.type !== "ORDER_MODIFIER")) refuse("LIMIT and OFFSET are not allowed");
  if (root.aggregate_handling === "FORCE_AGGREGATES") refuse("GROUP BY ALL is not allowed");
  const groupExprs = Array.isArray(root.group_expressions) ? (root.group_expressions as unknown[]) : [];
  if ((dp.groups === "single") !== (groupExprs.length === 0)) {
    refuse('groups "single" exactly when there is no GROUP BY');
  }

  const items = (root.select_list as AstNode[]).map((node) => ({ name: String(node.alias), node }));
  const declared = new Map(dp.columns.map((c) => [c.name, c]));
  const byName = new Map<string, AstNode>();
  for (const c of dp.columns) {
    const found = items.filter((i) => i.name === c.name);
    if (found.length !== 1) refuse("each noised column must be one aliased output column");
    byName.set(c.name, found[0]!.node);
  }
  const keyShapes = new Set(groupExprs.map(shape));
  const keyAliases = new Set(
    groupExprs.flatMap((g) =>
      isNode(g) && g.class === "COLUMN_REF" && Array.isArray(g.column_names) && g.column_names.length === 1
        ? [lower(g.column_names[0])]
        : [],
    ),
  );
  const undeclared = items.filter((i) => !declared.has(i.name));
  const isKey = (node: unknown, alias: string): boolean =>
    keyShapes.has(shape(node)) || (alias !== "" && keyAliases.has(lower(alias)));
  for (const item of undeclared) {
    if (!isKey(item.node, item.name)) refuse("every output column must be a noised column or a group key");
  }
  // Ordering by an exact aggregate would reveal it; ordering by group keys reveals nothing more.
  const keyOutputs = new Set(undeclared.map((i) => lower(i.name)));
  for (const m of modifiers) {
    for (const order of Array.isArray(m.orders) ? (m.orders as AstNode[]) : []) {
      const e = order.expression;
      const byKeyName =
        isNode(e) &&
        e.class === "COLUMN_REF" &&
        Array.isArray(e.column_names) &&
        e.column_names.length === 1 &&
        keyOutputs.has(lower(e.column_names[0]));
      if (!byKeyName && !keyShapes.has(shape(e))) refuse("ORDER BY may only use group keys");
    }
  }

  const table = tables[0]!;
  for (const c of dp.columns) checkAggregate(byName.get(c.name)!, c, table, refuse);
  return byName;
}

/** A declared column must be exactly the aggregate its kind's sensitivity is for, unwrapped. */
function checkAggregate(node: AstNode, c: DpColumn, table: TableUse, refuse: (r: string) => never): void {
  if (c.kind === "avg") return; // replaced by noisy sum / noisy count; its exact value never leaves
  if (c.kind === "count") {
    if (!isFunction(node, ["count", "count_star"])) refuse("a count column must be count(...)");
    return;
  }
  if (c.kind === "sum") {
    if (!isFunction(node, ["sum"]) || node.distinct || (node.children as unknown[]).length !== 1) {
      refuse("a sum column must be sum(expression)");
    }
    return;
  }
  const arg = isFunction(node, ["count"]) && node.distinct ? (node.children as unknown[]) : [];
  const ref = arg.length === 1 && isNode(arg[0]) && arg[0].class === "COLUMN_REF" ? arg[0] : undefined;
  const names = ref && Array.isArray(ref.column_names) ? ref.column_names.map(lower) : [];
  const identity = lower(table.dataset.identityColumn);
  const ok =
    (names.length === 1 && names[0] === identity) ||
    (names.length === 2 && names[0] === lower(table.alias) && names[1] === identity);
  if (!ok) refuse("a count-distinct column must be count(DISTINCT <identity column>)");
}

/** The first node of the single statement `sql` parses to, found by `pick`. */
async function templateNode(
  conn: Parameters<typeof parseSql>[0],
  sql: string,
  pick: (root: AstNode) => unknown,
): Promise<AstNode> {
  const parsed = await parseSql(conn, sql);
  const node = parsed.statements?.[0] ? pick(parsed.statements[0].node) : undefined;
  if (!isNode(node)) throw new Error("dp rewrite: template did not parse");
  return node;
}

/** An exact decimal literal of a fixed-point value (value * 10^-places). */
function decimalLiteral(value: bigint, places: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(places + 1, "0");
  const body = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
  return `${negative ? "-" : ""}${body}`;
}

/**
 * Rewrites `parsed` (a private copy of the checked tree) in place: bounded tables, clamped sums.
 * Returns the table references that need a hidden distinct-identity count (for the threshold).
 */
export async function rewriteForDp(
  conn: Parameters<typeof parseSql>[0],
  checked: CheckedQuery,
  parsed: ParsedSql,
  dp: DpPolicy,
): Promise<TableUse[]> {
  const declared = checkDpShape({ ...checked, parsed }, dp);
  const m = dp.maxRowsPerIdentity;
  if (m === undefined) throw new QueryCheckError(checked.query.id, "dp: maxRowsPerIdentity required");
  const byId = new Map(checked.datasets.map((d) => [d.id.toLowerCase(), d]));
  const root = parsed.statements![0]!.node;

  const baseTables: AstNode[] = [];
  walk(root, (n) => {
    if (n.type === "BASE_TABLE" && byId.has(lower(n.table_name))) baseTables.push(n);
  });
  for (const n of baseTables) {
    const d = byId.get(lower(n.table_name))!;
    const order = d.columns.map((c) => quoteIdent(c.name)).join(", ");
    const alias = String(n.alias || n.table_name);
    const sql = `SELECT * FROM (SELECT * FROM ${quoteIdent(d.id)} QUALIFY row_number() OVER (PARTITION BY ${quoteIdent(d.identityColumn)} ORDER BY ${order}) <= ${m}) AS ${quoteIdent(alias)}`;
    const bounded = await templateNode(conn, sql, (r) => r.from_table);
    bounded.column_name_alias = n.column_name_alias;
    bounded.sample = n.sample ?? null;
    for (const key of Object.keys(n)) delete n[key];
    Object.assign(n, bounded);
  }

  for (const c of dp.columns) {
    if (c.kind !== "sum") continue;
    const places = c.decimals ?? 0;
    const range = clampRange(dp, places);
    if (clampBound(range) >= 10n ** BigInt(SUM_INPUT_DIGITS)) {
      throw new QueryCheckError(checked.query.id, "dp: clamp range too wide for its decimals");
    }
    const sql = `SELECT CAST(least(greatest(__x, ${decimalLiteral(range.lower, places)}), ${decimalLiteral(range.upper, places)}) AS DECIMAL(${SUM_INPUT_DIGITS},${places}))`;
    const clamped = await templateNode(conn, sql, (r) => (r.select_list as unknown[])[0]);
    const call = declared.get(c.name)!;
    const children = call.children as unknown[];
    walk(clamped, (x) => {
      if (x.class === "FUNCTION" && lower(x.function_name) === "greatest") {
        (x.children as unknown[])[0] = children[0];
      }
    });
    children[0] = clamped;
  }

  const thresholdFromDeclared = dp.columns.some((c) => c.kind === "count-distinct");
  return dp.groups === "private" && !thresholdFromDeclared ? [checked.tables[0]!] : [];
}

/** What applyDp needs for this policy; `hidden` names the appended threshold count, if any. */
export function dpSpecOf(dp: DpPolicy, k: number, hidden: string | undefined): DpSpec {
  const aggregateColumns: DpAggregateColumn[] = dp.columns.map((c) =>
    c.kind === "avg"
      ? { name: c.name, kind: "avg", sum: c.sum, count: c.count }
      : { name: c.name, kind: c.kind },
  );
  if (hidden) aggregateColumns.push({ name: hidden, kind: "count-distinct", release: false });
  const thresholdColumn = hidden ?? dp.columns.find((c) => c.kind === "count-distinct")?.name;
  return {
    aggregateColumns,
    policy: dp,
    groups: dp.groups,
    // The k rule, under DP, is applied to the noisy distinct count: an exact cut would leak.
    ...(dp.groups === "private" ? { threshold: { column: thresholdColumn, minimum: k } } : {}),
    ...(dp.delta !== undefined ? { delta: dp.delta } : {}),
  };
}

/** Proves at plan time that the spec fits the statement's columns (names, types, bounds). */
export function checkDpSpec(queryId: string, spec: DpSpec, columns: { name: string; type: string }[]): void {
  try {
    applyDp({ columns, rows: [] as Json[][] }, spec, cryptoRng());
  } catch {
    throw new QueryCheckError(queryId, "dp: policy does not fit the query's output columns or types");
  }
}
