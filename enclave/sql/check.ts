/**
 * Contract-load check of approved queries, on DuckDB's own parse tree (json_serialize_sql), never
 * on the SQL text. The accepted shape is documented in docs/QUERY-RULES.md; anything else is
 * refused with a QueryCheckError naming the query and the rule.
 */
import type { ApprovedQuery, Contract, Dataset } from "../../protocol/contract/types.js";
import { type AstNode, isNode, type ParsedSql, parseSql, walk } from "./ast.js";
import { openEngine, type SqlEngine } from "./engine.js";
import { QueryCheckError } from "./errors.js";
import { HIDDEN_PREFIX } from "./hidden.js";
import { checkDatasetShape, createTypedTable } from "./ingest.js";
import { planQuery } from "./policy.js";

/** A base-table reference in the top-level FROM: the hidden k-counts are computed per reference. */
export interface TableUse {
  alias: string;
  dataset: Dataset;
}

export interface CheckedQuery {
  query: ApprovedQuery;
  parsed: ParsedSql;
  /** Top-level FROM references (aggregate policy only; empty for row-level). */
  tables: TableUse[];
  /** The datasets the query was checked against (the DP rewrite bounds each table it reads). */
  datasets: Dataset[];
}

/** Table sources other than tables, joins and subqueries: table functions, VALUES, PIVOT, SHOW... */
const FORBIDDEN_TABLE_REFS = new Set([
  "TABLE_FUNCTION",
  "EXPRESSION_LIST",
  "PIVOT",
  "SHOW_REF",
  "COLUMN_DATA",
  "DELIM_GET",
  "RECURSIVE_CTE_NODE",
]);

/** Scalar functions that touch files, the network, settings, sequences, or SQL-as-data. */
const FORBIDDEN_FUNCTIONS =
  /^(read_|glob$|query$|query_table$|sniff_csv$|parquet_|iceberg_|delta_|http|duckdb_|pragma_|current_setting$|getenv$|getvariable$|setvariable$|nextval$|currval$|json_(execute_serialized_sql|serialize|deserialize)|checkpoint$|force_checkpoint$|sql_auto_complete$|which_secret$)/;

/** Aggregates that may see an identity column: they output a count, never the value. */
const COUNTING = new Set(["count", "count_star", "approx_count_distinct"]);

/**
 * Aggregates that return the group's values themselves rather than a summary of them: under an
 * aggregate policy they would release every member's value of a group of k as a list or string.
 */
const COLLECTING = new Set([
  "list",
  "array_agg",
  "string_agg",
  "group_concat",
  "listagg",
  "histogram",
  "histogram_exact",
  "approx_top_k",
  "bitstring_agg",
]);
/** max(x, n), arg_max(x, y, n) ... return the top n values: collecting too, from this many arguments. */
const TOP_N_ARITY: Record<string, number> = {
  max: 2,
  min: 2,
  max_by: 3,
  min_by: 3,
  arg_max: 3,
  arg_min: 3,
  argmax: 3,
  argmin: 3,
  arg_max_null: 3,
  arg_min_null: 3,
  arg_max_nulls_last: 3,
  arg_min_nulls_last: 3,
};

/** Join kinds of the top-level FROM under aggregation (not ASOF, POSITIONAL or LATERAL). */
const PLAIN_JOINS = new Set(["REGULAR", "CROSS", "NATURAL"]);

const aggregateNames = new WeakMap<SqlEngine, Set<string>>();

/** Aggregate function names as the engine's catalog knows them (the parser does not mark them). */
async function aggregates(engine: SqlEngine): Promise<Set<string>> {
  let names = aggregateNames.get(engine);
  if (!names) {
    const r = await engine.connection.runAndReadAll(
      "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'aggregate'",
    );
    names = new Set(r.getRows().map((row) => String(row[0])));
    aggregateNames.set(engine, names);
  }
  return names;
}

const lower = (s: unknown): string => String(s).toLowerCase();

export async function checkApprovedQuery(
  engine: SqlEngine,
  datasets: Dataset[],
  query: ApprovedQuery,
): Promise<CheckedQuery> {
  const refuse = (reason: string): never => {
    throw new QueryCheckError(query.id, reason);
  };
  checkPolicyFields(query, refuse);
  const parsed = await parseSql(engine.connection, query.sql);
  if (parsed.error || !parsed.statements) return refuse("is not a single SELECT statement");
  if (parsed.statements.length !== 1) return refuse("must be exactly one statement");
  const root = parsed.statements[0]!.node;

  const byId = new Map(datasets.map((d) => [d.id.toLowerCase(), d]));
  const cteNames = new Set<string>();
  walk(root, (n) => {
    const map = isNode(n.cte_map) && Array.isArray(n.cte_map.map) ? n.cte_map.map : [];
    for (const entry of map) {
      const name = lower((entry as AstNode).key);
      if (byId.has(name)) refuse("a CTE may not shadow a dataset table");
      cteNames.add(name);
    }
  });

  const relations = new Set<string>([...byId.keys(), ...cteNames]);
  const names = new Set<string>(datasets.flatMap((d) => d.columns.map((c) => c.name.toLowerCase())));
  const columnRefs: string[][] = [];
  const parameters = new Set<string>();
  walk(root, (n) => {
    if (typeof n.type === "string" && FORBIDDEN_TABLE_REFS.has(n.type)) {
      refuse("table functions, VALUES, PIVOT and recursive CTEs are not allowed");
    }
    if (typeof n.alias === "string" && n.alias !== "") {
      if (lower(n.alias).startsWith(HIDDEN_PREFIX)) refuse("reserved alias prefix");
      names.add(lower(n.alias));
    }
    for (const a of Array.isArray(n.column_name_alias) ? n.column_name_alias : []) names.add(lower(a));
    for (const a of Array.isArray(n.aliases) ? n.aliases : []) names.add(lower(a));
    if (n.type === "BASE_TABLE") {
      if (n.schema_name !== "" || n.catalog_name !== "" || n.at_clause !== null) {
        refuse("qualified or time-travel table references are not allowed");
      }
      if (!byId.has(lower(n.table_name)) && !cteNames.has(lower(n.table_name))) refuse("unknown table");
    }
    if ((n.type === "BASE_TABLE" || n.type === "SUBQUERY" || n.type === "JOIN") && "sample" in n) {
      if (typeof n.alias === "string" && n.alias !== "") relations.add(lower(n.alias));
    }
    if (n.class === "FUNCTION") {
      if (n.schema !== "" || n.catalog !== "") refuse("qualified function names are not allowed");
      if (FORBIDDEN_FUNCTIONS.test(lower(n.function_name))) refuse("function not allowed");
    }
    if (n.class === "PARAMETER") parameters.add(String(n.identifier));
    if (n.class === "COLUMN_REF" && Array.isArray(n.column_names)) columnRefs.push(n.column_names.map(lower));
  });

  for (const ref of columnRefs) {
    const column = ref[ref.length - 1]!;
    if (ref.length > 2) refuse("column references must be column or table.column");
    if (ref.length === 2 && !relations.has(ref[0]!)) refuse("unknown table");
    if (!names.has(column)) refuse("unknown column");
  }

  const declared = new Set(query.parameters.map((p) => p.name));
  if (declared.size !== query.parameters.length) refuse("duplicate parameter declaration");
  for (const p of parameters) if (!declared.has(p)) refuse("uses an undeclared or positional parameter");
  for (const p of declared) if (!parameters.has(p)) refuse("declares a parameter it does not use");

  const tables =
    query.policy.kind === "aggregate"
      ? checkAggregateShape(root, byId, await aggregates(engine), refuse)
      : [];
  return { query, parsed, tables, datasets };
}

function checkPolicyFields(query: ApprovedQuery, refuse: (reason: string) => never): void {
  const { policy } = query;
  if (policy.kind !== "aggregate" && policy.kind !== "row-level") refuse("unknown policy kind");
  if (policy.allowedColumns.length === 0) refuse("no allowed output columns");
  if (
    policy.kind === "aggregate" &&
    !(Number.isInteger(policy.minDistinctIdentities) && policy.minDistinctIdentities >= 1)
  ) {
    refuse("minDistinctIdentities must be an integer >= 1");
  }
}

/**
 * Aggregate policy: a plain SELECT whose FROM joins only dataset tables (so one hidden distinct
 * count per reference is computable), that aggregates, and whose output never carries an
 * identity column except inside a count.
 */
function checkAggregateShape(
  root: AstNode,
  byId: Map<string, Dataset>,
  aggregateFns: Set<string>,
  refuse: (reason: string) => never,
): TableUse[] {
  if (root.type !== "SELECT_NODE") refuse("aggregate queries must be a plain SELECT (no set operations)");
  const modifiers = Array.isArray(root.modifiers) ? (root.modifiers as AstNode[]) : [];
  if (modifiers.some((m) => m.type === "DISTINCT_MODIFIER"))
    refuse("SELECT DISTINCT is not allowed at the top level");

  const tables: TableUse[] = [];
  const collect = (ref: unknown): void => {
    if (!isNode(ref)) {
      refuse("top-level FROM may only join dataset tables");
    } else if (ref.type === "BASE_TABLE") {
      const dataset =
        byId.get(lower(ref.table_name)) ?? refuse("top-level FROM may only join dataset tables");
      tables.push({ alias: String(ref.alias || ref.table_name), dataset });
    } else if (ref.type === "JOIN" && PLAIN_JOINS.has(String(ref.ref_type))) {
      collect(ref.left);
      collect(ref.right);
    } else {
      refuse("top-level FROM may only join dataset tables");
    }
  };
  collect(root.from_table);

  const groupSets = Array.isArray(root.group_sets) ? root.group_sets : [];
  if (groupSets.length > 1) refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  const groupExprs = Array.isArray(root.group_expressions) ? root.group_expressions : [];
  const grouped = groupExprs.length > 0 || root.aggregate_handling === "FORCE_AGGREGATES";
  if (!grouped && root.aggregate_handling !== "STANDARD_HANDLING") refuse("must aggregate");

  const identities = new Set(tables.map((t) => t.dataset.identityColumn.toLowerCase()));
  let aggregated = false;
  const visit = (node: unknown, inside: "none" | "count" | "other"): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child, inside);
      return;
    }
    if (!isNode(node)) return;
    if (node.class === "STAR") refuse("* is not allowed in an aggregate query's output");
    if (node.class === "WINDOW") refuse("window functions are not allowed in an aggregate query's output");
    if (node.class === "SUBQUERY") refuse("subqueries are not allowed in an aggregate query's output");
    let context = inside;
    if (node.class === "FUNCTION" && aggregateFns.has(lower(node.function_name))) {
      const name = lower(node.function_name);
      const arity = Array.isArray(node.children) ? node.children.length : 0;
      if (COLLECTING.has(name) || arity >= (TOP_N_ARITY[name] ?? Number.POSITIVE_INFINITY)) {
        refuse("aggregates that collect a group's values are not allowed in the output");
      }
      aggregated = true;
      context = COUNTING.has(lower(node.function_name)) && inside !== "other" ? "count" : "other";
    }
    if (node.class === "COLUMN_REF" && Array.isArray(node.column_names)) {
      const column = lower(node.column_names[node.column_names.length - 1]);
      if (identities.has(column) && context !== "count") refuse("identity column in the output");
      if (context === "none" && !grouped) refuse("without GROUP BY every output must be an aggregate");
    }
    for (const child of Object.values(node)) visit(child, context);
  };
  visit(root.select_list, "none");
  if (!grouped && !aggregated) refuse("must aggregate (GROUP BY or aggregate functions only)");
  return tables;
}

/**
 * Checks every approved query of a contract: the parse-tree rules above, then binding against
 * empty tables of the declared schemas in a throwaway locked engine (which proves columns exist,
 * types line up, parameters are exactly the declared ones and output names are allowed).
 */
export async function checkContractQueries(contract: Contract): Promise<void> {
  const ids = new Set<string>();
  for (const q of contract.queries) {
    if (ids.has(q.id)) throw new QueryCheckError(q.id, "duplicate query id");
    ids.add(q.id);
  }
  const engine = await openEngine({ memoryLimit: "64MB", threads: 1 });
  try {
    for (const d of contract.datasets) {
      checkDatasetShape(d);
      await createTypedTable(engine.connection, d.id, d.columns);
    }
    for (const query of contract.queries) {
      const plan = await planQuery(engine, await checkApprovedQuery(engine, contract.datasets, query));
      plan.close();
    }
  } finally {
    engine.close();
  }
}
