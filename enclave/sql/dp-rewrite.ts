/**
 * The custom analysis rule: richer SQL (joins, subqueries, CTEs, window functions) whose result
 * leaves only through differential privacy. Two parts, both on DuckDB's parse tree:
 *
 * - the shape: the top level is one plain SELECT whose every output is a GROUP BY expression or a
 *   declared dp column, exactly the aggregate its sensitivity is for (customShape);
 * - the rewrite that makes the declared sensitivities true whatever FROM and WHERE say
 *   (customSql): the query's rows are computed once per privacy unit (one identity value across
 *   all datasets), every dataset table it reads, anywhere in the tree, restricted to that unit's
 *   rows; each unit keeps at most maxRowsPerIdentity of its rows (a fixed order over the rows'
 *   values), sums are clamped, and only then is anything aggregated.
 *
 * docs/DIFFERENTIAL-PRIVACY.md ("The custom rule") states the resulting semantics.
 */
import type { DuckDBConnection, Json } from "@duckdb/node-api";
import type { Dataset, DpColumn, DpPolicy } from "../../protocol/contract/types.js";
import { CUSTOM_AGGREGATE_NAMES } from "../../protocol/rules/functions.js";
import { HIDDEN_PREFIX, lower, nodes, shape } from "../../protocol/rules/tree.js";
import { applyDp, type DpAggregateColumn, type DpSpec } from "../dp/apply.js";
import { clampBound, clampRange } from "../dp/contribution.js";
import { DpPolicyError } from "../dp/errors.js";
import { cryptoRng } from "../dp/random.js";
import { type AstNode, isNode, type ParsedSql, parseSql, renderSql, walk, withTry } from "./ast.js";
import type { CheckedQuery } from "./check.js";
import { quoteIdent } from "./engine.js";
import { QueryCheckError } from "./errors.js";

/** Fixed-point sum inputs are DECIMAL(18, d); their sums (DECIMAL(38, d)) cannot overflow. */
const SUM_INPUT_DIGITS = 18;

/** Name of the hidden distinct-unit count the noisy threshold reads, when one is needed. */
export const DP_THRESHOLD_COLUMN = `${HIDDEN_PREFIX}_k0`;

/** The enclave's own names in the rewritten SQL (approved SQL may not use the prefix). */
const UNIT = `${HIDDEN_PREFIX}_unit`;
const UNITS = `${HIDDEN_PREFIX}_u`;
const ROW = `${HIDDEN_PREFIX}_r`;
const ROWS = `${HIDDEN_PREFIX}_rows`;
const TABLE = `${HIDDEN_PREFIX}_t`;
const FILLER = `${HIDDEN_PREFIX}_x`;
const keyName = (i: number) => `${HIDDEN_PREFIX}_g${i}`;

/**
 * The enclave's own parameters of a custom plan: which units a run reads, by the 64-bit hash of
 * their identity (a range and a list to skip). A normal run reads every unit; a run whose SQL
 * fails on some units' data finds and skips exactly those (enclave/sql/run.ts).
 */
export const UNIT_FROM = `${HIDDEN_PREFIX}_from`;
export const UNIT_TO = `${HIDDEN_PREFIX}_to`;
export const UNIT_SKIP = `${HIDDEN_PREFIX}_skip`;
const argName = (j: number) => `${HIDDEN_PREFIX}_a${j}`;

const q = quoteIdent;

/** One output column of a custom query, in select-list order. */
type Output =
  | { name: string; key: number }
  /** `arg`: the aggregate's argument (count(x), sum(x), count(DISTINCT id)); none for count(*) and avg. */
  | { name: string; column: DpColumn; arg?: AstNode };

interface CustomShape {
  /** GROUP BY expressions, in order. */
  keys: AstNode[];
  outputs: Output[];
}

/** Parse-tree keys whose strings are names (of tables, CTEs, columns, aliases). */
const NAME_KEYS = new Set(["alias", "key", "table_name", "column_names", "column_name_alias", "aliases"]);

/**
 * Refuses (QueryCheckError "dp: ...") a custom query whose top level the declared mechanisms do
 * not cover; returns its group keys and outputs.
 */
function customShape(
  root: AstNode,
  dp: DpPolicy,
  datasets: readonly Dataset[],
  refuse: (reason: string) => never,
): CustomShape {
  if (root.type !== "SELECT_NODE") refuse("dp: the query must be one plain SELECT (no set operation)");
  for (const m of nodes(root.modifiers)) {
    if (m.type === "DISTINCT_MODIFIER") refuse("dp: SELECT DISTINCT is not allowed");
    if (m.type === "ORDER_MODIFIER") refuse("dp: ORDER BY is not allowed (the enclave orders released rows)");
    refuse("dp: LIMIT and OFFSET are not allowed");
  }
  if (root.having !== null && root.having !== undefined) refuse("dp: HAVING is not allowed");
  if (root.qualify !== null && root.qualify !== undefined) refuse("dp: QUALIFY is not allowed");
  if (root.aggregate_handling === "FORCE_AGGREGATES") refuse("dp: GROUP BY ALL is not allowed");
  if (root.aggregate_handling !== "STANDARD_HANDLING") refuse("dp: unsupported aggregate handling");

  // The enclave's names must bind to the enclave's relations only.
  walk(root, (n) => {
    for (const [key, value] of Object.entries(n)) {
      if (!NAME_KEYS.has(key)) continue;
      const names = Array.isArray(value) ? value : [value];
      if (names.some((x) => typeof x === "string" && lower(x).startsWith(HIDDEN_PREFIX))) {
        refuse(`dp: names starting with ${HIDDEN_PREFIX} are reserved`);
      }
    }
  });

  const keys = nodes(root.group_expressions);
  const sets = Array.isArray(root.group_sets) ? (root.group_sets as unknown[]) : [];
  const plainSets =
    keys.length === 0
      ? sets.length === 0
      : sets.length === 1 &&
        Array.isArray(sets[0]) &&
        new Set(sets[0]).size === keys.length &&
        keys.every((_, i) => (sets[0] as unknown[]).includes(i));
  if (!plainSets) refuse("dp: GROUPING SETS, ROLLUP and CUBE are not allowed");
  if ((dp.groups === "single") !== (keys.length === 0)) {
    refuse('dp: groups "single" exactly when there is no GROUP BY');
  }

  const identities = new Set(datasets.map((d) => lower(d.identityColumn)));
  const relations = new Set<string>();
  walk(root, (n) => {
    if (n.type === "BASE_TABLE") relations.add(lower(n.table_name));
    if ((n.type === "BASE_TABLE" || n.type === "SUBQUERY" || n.type === "JOIN") && n.alias) {
      relations.add(lower(n.alias));
    }
    for (const entry of isNode(n.cte_map) ? nodes(n.cte_map.map) : []) relations.add(lower(entry.key));
  });
  for (const key of keys) {
    if (key.class === "CONSTANT") refuse("dp: GROUP BY positions are not allowed (repeat the expression)");
    const names = Array.isArray(key.column_names) ? key.column_names : [];
    if (key.class === "COLUMN_REF" && names.length === 1 && relations.has(lower(names[0]))) {
      refuse("dp: a group key may not be a whole row");
    }
    walk(key, (n) => {
      const ref = Array.isArray(n.column_names) ? n.column_names : [];
      if (n.class === "COLUMN_REF" && identities.has(lower(ref[ref.length - 1]))) {
        refuse("dp: a group key may not be an identity column");
      }
    });
  }

  const declared = new Map(dp.columns.map((c) => [c.name, c]));
  const keyShapes = keys.map(shape);
  const outputs: Output[] = [];
  const seen = new Set<string>();
  for (const item of nodes(root.select_list)) {
    const name = typeof item.alias === "string" ? item.alias : "";
    if (name === "") refuse("dp: every output column needs an alias (AS name)");
    if (seen.has(name)) refuse("dp: output names must be unique");
    seen.add(name);
    const column = declared.get(name);
    if (column) {
      outputs.push({ name, column, ...argOf(item, column, identities, refuse) });
      continue;
    }
    const key = keyShapes.indexOf(shape(item));
    if (key < 0) refuse("dp: every output column must be a dp column or a GROUP BY expression");
    outputs.push({ name, key });
  }
  for (const c of dp.columns) {
    if (!seen.has(c.name)) refuse("dp: each dp column must be one aliased output column");
  }
  keys.forEach((_, i) => {
    if (!outputs.some((o) => "key" in o && o.key === i)) {
      refuse("dp: every GROUP BY expression must be an output column");
    }
  });
  return { keys, outputs };
}

/** A declared column must be exactly the aggregate its kind's sensitivity is for, unwrapped. */
function argOf(
  node: AstNode,
  c: DpColumn,
  identities: Set<string>,
  refuse: (reason: string) => never,
): { arg?: AstNode } {
  if (c.kind === "avg") return {}; // computed by enclave/dp from noisy sum / noisy count
  const fn = node.class === "FUNCTION" ? lower(node.function_name) : "";
  const args = nodes(node.children);
  const orders = isNode(node.order_bys) ? nodes(node.order_bys.orders) : [];
  if ((fn === "count" || fn === "count_star" || fn === "sum") && (node.filter || orders.length > 0)) {
    refuse("dp: FILTER and ORDER BY inside a dp aggregate are not allowed");
  }
  if (c.kind === "count") {
    if (fn === "count_star" && args.length === 0 && !node.distinct) return {};
    if (fn === "count" && args.length <= 1 && !node.distinct) return args[0] ? { arg: args[0] } : {};
    return refuse("dp: a count column must be count(*) or count(expression)");
  }
  if (c.kind === "sum") {
    if (fn === "sum" && args.length === 1 && !node.distinct) return { arg: args[0]! };
    return refuse("dp: a sum column must be sum(expression)");
  }
  const ref = fn === "count" && node.distinct && args.length === 1 ? args[0]! : undefined;
  const names = ref?.class === "COLUMN_REF" && Array.isArray(ref.column_names) ? ref.column_names : [];
  if (!ref || names.length < 1 || names.length > 2 || !identities.has(lower(names[names.length - 1]))) {
    refuse("dp: a count-distinct column must be count(DISTINCT <identity column>)");
  }
  return { arg: ref! };
}

/** The one statement `sql` parses to. */
async function parseOne(conn: DuckDBConnection, sql: string): Promise<AstNode> {
  const parsed = await parseSql(conn, sql);
  const node = parsed.statements?.[0]?.node;
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
 * The custom query rewritten so that contributions are bounded per privacy unit over the whole
 * query. Output: the visible columns in select-list order, then `hidden` hidden columns (the
 * distinct-unit count the noisy threshold reads, DP_THRESHOLD_COLUMN, for private groups without
 * a declared count-distinct). Refuses (QueryCheckError "dp: ...") a query outside the rule.
 *
 *   SELECT g0 AS <key>, ..., <agg>(a0) AS <name>, ..., count(DISTINCT unit) AS __cleanroom_k0
 *   FROM (SELECT u.unit, r.* FROM (SELECT id FROM d1 UNION SELECT id FROM d2 ...) AS u(unit),
 *         (WITH <CTEs> SELECT <keys> AS g0.., <aggregate arguments> AS a0.. FROM <FROM> WHERE <WHERE>)
 *           AS r  -- every dataset table in it: (SELECT * FROM d WHERE d.id = u.unit) AS <alias>
 *         QUALIFY row_number() OVER (PARTITION BY u.unit ORDER BY <every column of r>) <= m)
 *   GROUP BY g0, ...
 */
export async function customSql(
  conn: DuckDBConnection,
  checked: CheckedQuery,
): Promise<{ sql: string; hidden: number; unitsSql: string }> {
  const { query } = checked;
  const refuse = (reason: string): never => {
    throw new QueryCheckError(query.id, reason);
  };
  const dp = query.policy.dp;
  if (query.policy.kind !== "custom" || !dp) return refuse('dp: the "custom" rule needs a dp policy');
  const m = dp.maxRowsPerIdentity;
  if (m === undefined || !Number.isSafeInteger(m) || m < 1) return refuse("dp: maxRowsPerIdentity required");
  const parsed = structuredClone(checked.parsed);
  const statement = parsed.statements?.length === 1 ? parsed.statements[0]! : undefined;
  if (!statement) return refuse("is not a single SELECT statement");
  const root = statement.node;
  const { keys, outputs } = customShape(root, dp, checked.datasets, refuse);

  // The per-unit query: the original FROM, WHERE and CTEs, with keys and aggregate arguments as
  // its plain (ungrouped) select list.
  const args: AstNode[] = [];
  const argIndex = new Map<Output, number>();
  for (const o of outputs) {
    if ("column" in o && o.arg) {
      argIndex.set(o, args.length);
      args.push(o.arg);
    }
  }
  // Under TRY, a value that fails is NULL for its row: whether the run fails must not depend on
  // one person's data (what TRY cannot hold, subqueries and windows, is left as written).
  const safe = (n: AstNode): AstNode => withTry(n, CUSTOM_AGGREGATE_NAMES);
  const columns = [
    ...keys.map((k, i) => ({ ...safe(k), alias: keyName(i) })),
    ...args.map((a, j) => ({ ...safe(a), alias: argName(j) })),
  ];
  const inner: AstNode = {
    ...root,
    modifiers: [],
    group_expressions: [],
    group_sets: [],
    aggregate_handling: "STANDARD_HANDLING",
    having: null,
    qualify: null,
  };

  if (isNode(inner.where_clause)) inner.where_clause = safe(inner.where_clause);
  // Every dataset table it reads, anywhere (CTEs, subqueries, joins), becomes that unit's rows.
  const byId = new Map(checked.datasets.map((d) => [lower(d.id), d]));
  const tables: { node: AstNode; dataset: Dataset }[] = [];
  walk({ ...inner, select_list: columns }, (n) => {
    const dataset = n.type === "BASE_TABLE" ? byId.get(lower(n.table_name)) : undefined;
    if (dataset) tables.push({ node: n, dataset });
    if (n.type === "SELECT_NODE" && isNode(n.where_clause)) n.where_clause = safe(n.where_clause);
    // A value that does not convert is NULL: a run that fails on one person's value is an oracle.
    if (n.class === "CAST") n.try_cast = true;
  });
  if (tables.length === 0) return refuse("dp: the query must read a dataset");
  const read = [...new Map(tables.map((t) => [t.dataset.id, t.dataset])).values()].sort((a, b) =>
    a.id < b.id ? -1 : 1,
  );
  const typeOf = (d: Dataset) => d.columns.find((c) => c.name === d.identityColumn)?.type;
  const sameType = read.every((d) => typeOf(d) === typeOf(read[0]!));
  // One identity value is one unit in every dataset; differing types meet as text.
  const unitOf = (d: Dataset) => {
    const ref = `${q(TABLE)}.${q(d.identityColumn)}`;
    return sameType ? ref : `CAST(${ref} AS VARCHAR)`;
  };
  // A CTE named like a dataset would capture the restricted tables below; names must be plain.
  walk(inner, (n) => {
    for (const entry of isNode(n.cte_map) ? nodes(n.cte_map.map) : []) {
      if (byId.has(lower(entry.key))) refuse("dp: a CTE may not shadow a dataset table");
    }
    if (n.type === "BASE_TABLE" && (n.schema_name || n.catalog_name || n.at_clause)) {
      refuse("dp: qualified or time-travel table references are not allowed");
    }
  });
  // The run's units, filtered at every scan of a dataset (not only at the unit list), so that rows
  // of a unit the run skips are read by no expression, wherever the optimiser moves it.
  const selected = (d: Dataset) =>
    `hash(${unitOf(d)}) BETWEEN $${UNIT_FROM} AND $${UNIT_TO} AND NOT list_contains($${UNIT_SKIP}, hash(${unitOf(d)}))`;
  const restricted = new Map<string, AstNode>();
  for (const d of read) {
    const sql = `SELECT * FROM (SELECT * FROM ${q(d.id)} AS ${q(TABLE)} WHERE ${unitOf(d)} = ${q(UNITS)}.${q(UNIT)} AND ${selected(d)}) AS ${q(FILLER)}`;
    restricted.set(d.id, (await parseOne(conn, sql)).from_table as AstNode);
  }
  for (const { node, dataset } of tables) {
    const sub = structuredClone(restricted.get(dataset.id)!);
    sub.alias = String(node.alias || node.table_name);
    sub.column_name_alias = node.column_name_alias ?? [];
    sub.sample = node.sample ?? null;
    for (const key of Object.keys(node)) delete node[key];
    Object.assign(node, sub);
  }

  // Aggregates over the bounded per-unit rows.
  const select: string[] = [];
  for (const o of outputs) {
    const name = q(o.name);
    if ("key" in o) {
      select.push(`${q(keyName(o.key))} AS ${name}`);
      continue;
    }
    const j = argIndex.get(o);
    const a = j === undefined ? "" : q(argName(j));
    const c = o.column;
    if (c.kind === "avg") select.push(`CAST(NULL AS DOUBLE) AS ${name}`);
    else if (c.kind === "count") select.push(`count(${a || "*"}) AS ${name}`);
    else if (c.kind === "count-distinct") {
      // Units, not values: one unit adds at most 1 to a group whatever the column holds.
      select.push(`count(DISTINCT CASE WHEN ${a} IS NOT NULL THEN ${q(UNIT)} END) AS ${name}`);
    } else if (c.kind === "sum") {
      const places = c.decimals ?? 0;
      let range: ReturnType<typeof clampRange>;
      try {
        range = clampRange(dp, places);
      } catch {
        return refuse("dp: a sum column needs a clamp range");
      }
      if (clampBound(range) >= 10n ** BigInt(SUM_INPUT_DIGITS)) {
        return refuse("dp: clamp range too wide for its decimals");
      }
      const lo = decimalLiteral(range.lower, places);
      const hi = decimalLiteral(range.upper, places);
      select.push(
        `sum(CASE WHEN ${a} IS NOT NULL THEN CAST(least(greatest(${a}, ${lo}), ${hi}) AS DECIMAL(${SUM_INPUT_DIGITS},${places})) END) AS ${name}`,
      );
    }
  }
  const hidden = dp.groups === "private" && !dp.columns.some((c) => c.kind === "count-distinct") ? 1 : 0;
  if (hidden) select.push(`count(DISTINCT ${q(UNIT)}) AS ${q(DP_THRESHOLD_COLUMN)}`);

  const rowColumns = columns.length > 0 ? columns.map((c) => String(c.alias)) : [FILLER];
  const units = read
    .map(
      (d) =>
        `SELECT DISTINCT ${unitOf(d)} FROM ${q(d.id)} AS ${q(TABLE)} WHERE ${unitOf(d)} IS NOT NULL AND ${selected(d)}`,
    )
    .join(" UNION ");
  const order = rowColumns.map((c) => `${q(ROW)}.${q(c)}`).join(", ");
  const groupBy = keys.length > 0 ? ` GROUP BY ${keys.map((_, i) => q(keyName(i))).join(", ")}` : "";
  const template = `SELECT ${select.join(", ")} FROM (SELECT ${q(UNITS)}.${q(UNIT)}, ${q(ROW)}.* FROM (${units}) AS ${q(UNITS)}(${q(UNIT)}), (SELECT 1 AS ${q(FILLER)}) AS ${q(ROW)} QUALIFY row_number() OVER (PARTITION BY ${q(UNITS)}.${q(UNIT)} ORDER BY ${order}) <= ${m}) AS ${q(ROWS)}${groupBy}`;
  const outer = await parseOne(conn, template);
  let slot: AstNode | undefined;
  walk(outer, (n) => {
    if (n.type === "SUBQUERY" && n.alias === ROW) slot = n;
  });
  const placeholder = (slot?.subquery as AstNode | undefined)?.node as AstNode | undefined;
  if (!slot || !placeholder) throw new Error("dp rewrite: template has no row slot");
  inner.select_list = columns.length > 0 ? columns : placeholder.select_list;
  (slot.subquery as AstNode).node = inner;
  const rewritten: ParsedSql = {
    error: false,
    statements: [{ node: outer, named_param_map: statement.named_param_map ?? [] }],
  };
  // Every unit's hash, sorted: what a run that fails on some units' data searches (enclave/sql/run.ts).
  const allUnits = read
    .map(
      (d) => `SELECT hash(${unitOf(d)}) AS h FROM ${q(d.id)} AS ${q(TABLE)} WHERE ${unitOf(d)} IS NOT NULL`,
    )
    .join(" UNION ");
  const unitsSql = `SELECT DISTINCT h FROM (${allUnits}) ORDER BY h`;
  return { sql: await renderSql(conn, rewritten), hidden, unitsSql };
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
    // Carries `domain`: "public" results are exactly the declared groups.
    policy: dp,
    groups: dp.groups,
    // The k rule, under DP, is applied to the noisy distinct count: an exact cut would leak.
    ...(dp.groups === "private" ? { threshold: { column: thresholdColumn, minimum: k } } : {}),
    ...(dp.delta !== undefined ? { delta: dp.delta } : {}),
  };
}

/**
 * Proves at plan time that the spec fits the statement's columns (names, types, bounds, scalar
 * group keys, a "public" domain that covers exactly the keys and fits their types).
 */
export function checkDpSpec(queryId: string, spec: DpSpec, columns: { name: string; type: string }[]): void {
  try {
    applyDp({ columns, rows: [] as Json[][] }, spec, cryptoRng());
  } catch (e) {
    const detail = e instanceof DpPolicyError ? e.message.replace(/^(dp|policy): /, "") : undefined;
    throw new QueryCheckError(
      queryId,
      detail === undefined ? "dp: policy does not fit the query's output columns or types" : `dp: ${detail}`,
    );
  }
}
