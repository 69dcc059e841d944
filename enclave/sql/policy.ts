/**
 * Output policy the enclave applies whatever the SQL says. An aggregation query is re-emitted
 * from its compiled plan with the enclave's own table aliases, hidden distinct-people counts per
 * table and per measure read, the k rule on them inside the statement (HAVING), and (with the
 * differencing guard) each table's people as hashes; the hidden columns never leave, and released
 * rows go out in canonical order. A custom query is rewritten by dp-rewrite.ts (per-person
 * contribution bounds) and its rows go to enclave/dp with the spec the plan carries. Only scalar
 * outputs of allowed names may leave, under either rule.
 */
import {
  type DuckDBConnection,
  type DuckDBListVector,
  type DuckDBPreparedStatement,
  type DuckDBResult,
  type Json,
  JsonDuckDBValueConverter,
} from "@duckdb/node-api";
import { isCleanroomError } from "../../attestation/errors.js";
import { differencingGuarded } from "../../protocol/contract/types.js";
import { AGGREGATE_CALLS } from "../../protocol/rules/aggregation.js";
import { QueryCheckError } from "../../protocol/rules/errors.js";
import { SCALAR_OUTPUT_TYPES } from "../../protocol/rules/functions.js";
import { conjunction, conjuncts, HIDDEN_PREFIX, isColumnEquality, shape } from "../../protocol/rules/tree.js";
import type { DpSpec } from "../dp/apply.js";
import { type AstNode, columnRef, functionCall, isNode, renderSql, walk, withTry } from "./ast.js";
import type { CheckedQuery } from "./check.js";
import type { DifferencingGuard, PeopleSets } from "./differencing.js";
import { checkDpSpec, customSql, dpSpecOf, UNIT_FROM, UNIT_SKIP, UNIT_TO } from "./dp-rewrite.js";
import type { SqlEngine } from "./engine.js";

export interface OutputColumn {
  name: string;
  type: string;
}

/** A checked query prepared once on its own connection (so an interrupt stays local to it). */
export interface QueryPlan {
  checked: CheckedQuery;
  connection: DuckDBConnection;
  statement: DuckDBPreparedStatement;
  /** Columns that may leave, in order; hidden k-counts follow them in the statement's output. */
  columns: OutputColumn[];
  hidden: number;
  /** Aggregation rule: how many of the hidden columns are k counts (the rest: people lists). */
  counts: number;
  /** Aggregation rule with the differencing guard: per table, the hidden list of identity hashes follows the counts. */
  guarded: boolean;
  /** DP policies only: how enclave/dp noises the rows, and the hidden columns' names and types. */
  dp?: { spec: DpSpec; hiddenColumns: OutputColumn[] };
  /** Custom rule only: SQL listing every unit's identity hash, sorted (enclave/sql/dp-rewrite.ts). */
  unitsSql?: string;
  close(): void;
}

/** The enclave's alias for the table at `index` of an aggregation plan's FROM. */
const tableAlias = (index: number): string => `${HIDDEN_PREFIX}_t${index}`;

/** `call FILTER (WHERE ref IS NOT NULL)`. */
function whereNotNull(call: AstNode, ref: AstNode): AstNode {
  call.filter = {
    class: "OPERATOR",
    type: "OPERATOR_IS_NOT_NULL",
    alias: "",
    query_location: 0,
    children: [ref],
  };
  return call;
}

/** `list(DISTINCT hash(ref)) FILTER (WHERE ref IS NOT NULL)`: the people behind a group, hashed. */
function peopleOf(ref: AstNode, alias: string): AstNode {
  return whereNotNull(functionCall("list", [functionCall("hash", [ref], false, "")], true, alias), ref);
}

/**
 * Re-emits an aggregation query from its checked tree: every table gets the enclave's alias and
 * every column reference is rewritten to it, so what DuckDB binds is exactly what the plan names;
 * casts become TRY_CAST (a value that does not convert is NULL, never a data-dependent error).
 * The hidden distinct-identity counts follow the outputs, one per table and one per measure an
 * aggregate reads (people with a value), then (with the differencing guard) each table's identity
 * hashes.
 */
async function aggregationSql(
  engine: SqlEngine,
  checked: CheckedQuery,
): Promise<{ sql: string; hidden: number; counts: number }> {
  const plan = checked.plan!;
  const parsed = structuredClone(checked.parsed);
  const root = parsed.statements![0]!.node;
  const outside = () => new QueryCheckError(checked.query.id, "reference outside the compiled plan");
  // The plan numbered tables in FROM order, left to right: the same walk renames them.
  let next = 0;
  walk(root.from_table, (n) => {
    if (n.type === "BASE_TABLE") n.alias = tableAlias(next++);
  });
  if (next !== plan.tables.length) throw outside();
  walk(root, (n: AstNode) => {
    if (n.class !== "COLUMN_REF") return;
    const names = Array.isArray(n.column_names) ? n.column_names.map((x) => String(x).toLowerCase()) : [];
    const table = names.length === 2 ? plan.tables.find((t) => t.alias === names[0]) : undefined;
    const column = table?.dataset.columns.find((c) => c.name.toLowerCase() === names[1]);
    if (!table || !column) throw outside();
    n.column_names = [tableAlias(table.index), column.name];
  });
  walk(root, (n: AstNode) => {
    if (n.class === "CAST") n.try_cast = true;
  });
  // No row's value may fail the run: dimension expressions and predicates are evaluated under
  // TRY (an error is NULL for that row). Join keys stay bare (same-typed columns cannot fail) so
  // the engine still hashes on them, and a comparison in ON keeps its shape with each side under
  // TRY, so the engine still joins on it (a range join) instead of testing every pair of rows;
  // the plan checked that the two sides of such a comparison are of one type family.
  const safe = (n: AstNode): AstNode => withTry(n, NO_AGGREGATES);
  const safeInJoin = (c: AstNode): AstNode =>
    c.class === "COMPARISON" && isNode(c.left) && isNode(c.right)
      ? { ...c, left: safe(c.left), right: safe(c.right) }
      : safe(c);
  const groups = (root.group_expressions as AstNode[]).map((g) => shape(g));
  root.group_expressions = (root.group_expressions as AstNode[]).map(safe);
  root.select_list = (root.select_list as AstNode[]).map((item) =>
    groups.includes(shape(item)) ? safe(item) : inDouble(item),
  );
  if (isNode(root.where_clause))
    root.where_clause = conjunction((conjuncts(root.where_clause) as AstNode[]).map(safe));
  walk(root.from_table, (n) => {
    if (n.type !== "JOIN" || !isNode(n.condition)) return;
    n.condition = conjunction(
      (conjuncts(n.condition) as AstNode[]).map((c) => (isColumnEquality(c) ? c : safeInJoin(c))),
    );
  });
  const selectList = root.select_list as unknown[];
  const identity = (t: (typeof plan.tables)[number]) =>
    columnRef([tableAlias(t.index), t.dataset.identityColumn]);
  for (const t of plan.tables) {
    selectList.push(functionCall("count", [identity(t)], true, `${HIDDEN_PREFIX}_k${t.index}`));
  }
  // k holds for the people a measure's aggregate reads, not only for the group: a sum over a
  // group of k where one person alone has a value would be that person's value.
  const measured = new Map<string, { table: (typeof plan.tables)[number]; column: string }>();
  for (const o of plan.outputs) {
    for (const a of o.aggregates) {
      if (a.column && !a.column.roles.includes("identity")) {
        measured.set(`${a.column.table.index}.${a.column.column.name}`, {
          table: a.column.table,
          column: a.column.column.name,
        });
      }
    }
  }
  for (const [i, { table, column }] of [...measured.values()].entries()) {
    const count = functionCall("count", [identity(table)], true, `${HIDDEN_PREFIX}_m${i}`);
    selectList.push(whereNotNull(count, columnRef([tableAlias(table.index), column])));
  }
  const counts = plan.tables.length + measured.size;
  // The k rule inside the statement: groups below k never leave the engine, so neither their
  // number nor their existence can decide anything about the run (a row cap, a count).
  const k = checked.query.policy.minDistinctIdentities;
  const atLeastK = (selectList.slice(-counts) as AstNode[]).map((c) => ({
    class: "COMPARISON",
    type: "COMPARE_GREATERTHANOREQUALTO",
    alias: "",
    query_location: 0,
    left: { ...structuredClone(c), alias: "" },
    right: integerConstant(k),
  }));
  root.having = conjunction([...(isNode(root.having) ? [root.having] : []), ...atLeastK]);
  if (guarded(checked)) {
    for (const t of plan.tables) selectList.push(peopleOf(identity(t), `${HIDDEN_PREFIX}_u${t.index}`));
  }
  const hidden = counts + (guarded(checked) ? plan.tables.length : 0);
  return { sql: await renderSql(engine.connection, parsed), hidden, counts };
}

/**
 * An aggregate output that combines aggregates (ratios, rounding) computes in DOUBLE: every
 * aggregate inside is cast, so no arithmetic on them can overflow into an error that one person's
 * count decides. A bare aggregate keeps its type.
 */
function inDouble(item: AstNode): AstNode {
  if (item.class === "FUNCTION" && AGGREGATE_CALLS.has(String(item.function_name).toLowerCase())) return item;
  const cast = (n: AstNode): AstNode => ({
    class: "CAST",
    type: "OPERATOR_CAST",
    alias: "",
    query_location: 0,
    child: n,
    cast_type: { id: "DOUBLE", type_info: null },
    try_cast: false,
  });
  const visit = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(visit);
    if (!isNode(n)) return n;
    if (n.class === "FUNCTION" && AGGREGATE_CALLS.has(String(n.function_name).toLowerCase())) return cast(n);
    return Object.fromEntries(Object.entries(n).map(([key, v]) => [key, visit(v)]));
  };
  return visit(item) as AstNode;
}

function integerConstant(value: number): AstNode {
  return {
    class: "CONSTANT",
    type: "VALUE_CONSTANT",
    alias: "",
    query_location: 0,
    value: { type: { id: "INTEGER", type_info: null }, is_null: false, value },
  };
}

/** Aggregation predicates and dimensions hold no aggregate; nothing to exclude from TRY. */
const NO_AGGREGATES: ReadonlySet<string> = new Set();

const guarded = (checked: CheckedQuery): boolean => differencingGuarded(checked.query.policy);

/** "DECIMAL(18,2)" → "DECIMAL": the type family an output column's type name belongs to. */
const typeFamily = (name: string): string => name.replace(/\(.*\)$/, "");

export async function planQuery(engine: SqlEngine, checked: CheckedQuery): Promise<QueryPlan> {
  const { query } = checked;
  const rendered = (async () =>
    query.policy.kind === "aggregation"
      ? await aggregationSql(engine, checked)
      : { ...(await customSql(engine.connection, checked)), counts: 0 })() as Promise<{
    sql: string;
    hidden: number;
    counts: number;
    unitsSql?: string;
  }>;
  // The engine's renderer can refuse a tree the checks admitted; its text is not forwarded.
  const { sql, hidden, counts, unitsSql } = await rendered.catch((e: unknown) => {
    throw isCleanroomError(e) ? e : new QueryCheckError(query.id, "could not be compiled for the engine");
  });
  const connection = await engine.connect();
  const close = () => connection.closeSync();
  try {
    let statement: DuckDBPreparedStatement;
    try {
      statement = await connection.prepare(sql);
    } catch {
      // The binder's text is not forwarded: at run time it could describe loaded data.
      throw new QueryCheckError(query.id, "does not bind against the contract's tables");
    }
    const visible = statement.columnCount - hidden;
    const allowed = new Set(query.policy.allowedColumns);
    const columns: OutputColumn[] = [];
    for (let i = 0; i < visible; i++) {
      const name = statement.columnName(i);
      const type = statement.columnType(i).toString();
      if (!allowed.has(name)) {
        throw new QueryCheckError(query.id, `output column ${name} is not in the policy's allowedColumns`);
      }
      // What the engine bound, not what the text says: a row struct, list or map never leaves.
      if (!SCALAR_OUTPUT_TYPES.has(typeFamily(type))) {
        throw new QueryCheckError(query.id, `output column ${name} is not a scalar (${typeFamily(type)})`);
      }
      columns.push({ name, type });
    }
    for (let i = visible; i < statement.columnCount; i++) {
      const expected = i >= visible + counts ? "UBIGINT[]" : "BIGINT";
      if (query.policy.kind === "aggregation" && statement.columnType(i).toString() !== expected) {
        throw new QueryCheckError(query.id, "hidden column has an unexpected type");
      }
    }
    const bound = new Set<string>();
    for (let i = 1; i <= statement.parameterCount; i++) bound.add(statement.parameterName(i));
    // The custom rewrite's own unit parameters (enclave/sql/dp-rewrite.ts); contracts may not use the prefix.
    const unitParameters = query.policy.kind === "custom" ? [UNIT_FROM, UNIT_TO, UNIT_SKIP] : [];
    for (const p of unitParameters)
      if (!bound.delete(p)) throw new QueryCheckError(query.id, "rewrite lost its unit parameters");
    const declared = query.parameters.map((p) => p.name);
    if (bound.size !== declared.length || !declared.every((p) => bound.has(p))) {
      throw new QueryCheckError(query.id, "parameters differ from the declared ones");
    }
    const plan: QueryPlan = {
      checked,
      connection,
      statement,
      columns,
      hidden,
      counts,
      guarded: guarded(checked),
      ...(unitsSql !== undefined ? { unitsSql } : {}),
      close,
    };
    const dp = query.policy.dp;
    if (dp) {
      const hiddenColumns: OutputColumn[] = [];
      for (let i = visible; i < statement.columnCount; i++) {
        hiddenColumns.push({ name: statement.columnName(i), type: statement.columnType(i).toString() });
      }
      const spec = dpSpecOf(dp, query.policy.minDistinctIdentities, hiddenColumns[0]?.name);
      checkDpSpec(query.id, spec, [...columns, ...hiddenColumns]);
      plan.dp = { spec, hiddenColumns };
    }
    return plan;
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * k rule per output row, on the hidden counts: every table the query reads, and every measure an
 * aggregate reads, has at least k distinct people in the row's group. A table with none fails too:
 * "no one of that dataset" next to "one person" would tell the two apart. (The statement already
 * filters on the same counts; this is the second wall.)
 */
export function passesK(counts: number[], k: number): boolean {
  return counts.length > 0 && counts.every((c) => c >= k);
}

/** Compares rows by their JSON text: a total order that depends only on the released values. */
export function compareRows(a: readonly Json[], b: readonly Json[]): number {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Released rows in a canonical order, so that the engine's (parallel, data-dependent) row order
 * never reaches a recipient.
 */
export function canonicalRows<R extends readonly Json[]>(rows: R[]): R[] {
  return [...rows].sort(compareRows);
}

/** One row as the engine returned it under the aggregation rule, split by what each part is for. */
export interface AggregationRow {
  /** The released columns, as JSON. */
  row: Json[];
  /** The hidden distinct-people counts (the k rule). */
  counts: number[];
  /** The hidden people sets, per table read (guarded plans only; empty otherwise). */
  people: PeopleSets;
}

/**
 * Reads an aggregation plan's result a chunk at a time: only the released columns are converted
 * to JSON, and each people list is copied from its list vector into a sorted typed array without
 * an intermediate array of values (a group of a million people is one 8 MB copy, not a million
 * strings). More than `bound` rows fail the run with `tooMany()` before the rest is read.
 */
export async function readAggregationRows(
  plan: QueryPlan,
  result: DuckDBResult,
  bound: number,
  tooMany: () => Error,
): Promise<AggregationRow[]> {
  const visible = plan.columns.length;
  const counts = plan.counts;
  const out: AggregationRow[] = [];
  for (
    let chunk = await result.fetchChunk();
    chunk && chunk.rowCount > 0;
    chunk = await result.fetchChunk()
  ) {
    if (out.length + chunk.rowCount > bound) throw tooMany();
    const json = Array.from({ length: visible }, (_, c) =>
      chunk!.convertColumnValues(c, JsonDuckDBValueConverter),
    );
    const hidden = Array.from({ length: counts }, (_, c) => chunk!.getColumnVector(visible + c));
    const lists = Array.from(
      { length: chunk.columnCount - visible - counts },
      (_, c) => chunk!.getColumnVector(visible + counts + c) as DuckDBListVector,
    );
    for (let r = 0; r < chunk.rowCount; r++) {
      out.push({
        row: json.map((column) => column[r] ?? null),
        counts: hidden.map((v) => Number(v.getItem(r))),
        people: lists.map((v) => peopleOfRow(v, r)),
      });
    }
  }
  return out;
}

/** Row `r`'s hashes in `lists` (a NULL list, no one, is the empty set), sorted. */
function peopleOfRow(lists: DuckDBListVector, r: number): BigUint64Array {
  // The row's slice of the flat child vector: a view, where getItem(r) would build a value per hash.
  const hashes = lists.getItemVector(r);
  if (hashes === null) return new BigUint64Array(0);
  const set = new BigUint64Array(hashes.itemCount);
  for (let i = 0; i < set.length; i++) set[i] = hashes.getItem(i) as bigint;
  return set.sort();
}

/**
 * Applies the plan's policy to the engine's rows: the k rule, then (when the plan is guarded) the
 * differencing guard over the rows that passed, in canonical order. Under DP rows never come here:
 * the k rule is applied to noisy counts by enclave/dp. Returns the released rows only: how many
 * were held back is not counted (a count of suppressed groups would tell whether anyone matched,
 * however few). `released` holds the people sets of the released rows when the guard decided them.
 */
export function applyOutputPolicy(
  plan: QueryPlan,
  rows: readonly AggregationRow[],
  guard?: DifferencingGuard,
): { rows: Json[][]; released?: PeopleSets[] } {
  const { query } = plan.checked;
  const k = query.policy.minDistinctIdentities;
  const passed = rows.filter((r) => passesK(r.counts, k));
  passed.sort((a, b) => compareRows(a.row, b.row));
  if (!plan.guarded || !guard) return { rows: passed.map((p) => p.row) };
  const decisions = guard.release(
    query.id,
    passed.map((p) => p.people),
    k,
  );
  const released = passed.filter((_, i) => decisions[i]);
  return { rows: released.map((p) => p.row), released: released.map((p) => p.people) };
}
