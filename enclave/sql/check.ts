/**
 * Contract-load check of approved queries, on DuckDB's own parse tree (json_serialize_sql), never
 * on the SQL text. Under the aggregation rule the positive grammar of protocol/rules/aggregation.ts
 * decides; under the custom rule the generic walls below admit the SQL and dp-rewrite.ts decides
 * its shape. docs/QUERY-RULES.md states both; a refusal is a QueryCheckError naming the query.
 */

import type { ApprovedQuery, Contract, Dataset } from "../../protocol/contract/types.js";
import {
  type AggregationPlan,
  compileAggregation,
  refuseUnsafeIntegers,
} from "../../protocol/rules/aggregation.js";
import { QueryCheckError } from "../../protocol/rules/errors.js";
import { CUSTOM_FUNCTIONS } from "../../protocol/rules/functions.js";
import { type AstNode, isNode, type ParsedSql, parseSql, walk } from "./ast.js";
import { openEngine, type SqlEngine } from "./engine.js";
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
  /** The compiled aggregation plan (aggregation rule only). */
  plan?: AggregationPlan;
  /** Top-level FROM references (aggregation rule only; empty under custom). */
  tables: TableUse[];
  /** The datasets the query was checked against (the custom rewrite restricts each it reads). */
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

/** Scalar functions that touch files, the network, settings, sequences, or SQL-as-data (a second wall behind CUSTOM_FUNCTIONS). */
const FORBIDDEN_FUNCTIONS =
  /^(read_|glob$|query$|query_table$|sniff_csv$|parquet_|iceberg_|delta_|http|duckdb_|pragma_|current_setting$|getenv$|getvariable$|setvariable$|nextval$|currval$|json_(execute_serialized_sql|serialize|deserialize)|checkpoint$|force_checkpoint$|sql_auto_complete$|which_secret$)/;

const lower = (s: unknown): string => String(s).toLowerCase();

/** The statement's one SELECT tree, or a refusal. */
function statementOf(parsed: ParsedSql, refuse: (reason: string) => never): AstNode {
  if (parsed.error || !parsed.statements) return refuse("is not a single SELECT statement");
  if (parsed.statements.length !== 1) return refuse("must be exactly one statement");
  return parsed.statements[0]!.node;
}

export async function checkApprovedQuery(
  engine: SqlEngine,
  datasets: Dataset[],
  query: ApprovedQuery,
): Promise<CheckedQuery> {
  const refuse = (reason: string): never => {
    throw new QueryCheckError(query.id, reason);
  };
  const parsed = await parseSql(engine.connection, query.sql);
  const root = statementOf(parsed, refuse);
  if (query.policy.kind === "aggregation") {
    const plan = compileAggregation(root, query, datasets);
    const tables = plan.tables.map((t) => ({ alias: t.alias, dataset: t.dataset }));
    return { query, parsed, plan, tables, datasets };
  }
  if (query.policy.kind !== "custom") refuse("unknown analysis rule");
  refuseUnsafeIntegers(root, refuse);
  checkCustomWalls(root, datasets, query, refuse);
  return { query, parsed, tables: [], datasets };
}

/**
 * The custom rule's generic walls (its shape and the per-person rewrite are dp-rewrite.ts's):
 * only dataset tables, CTEs, joins and subqueries as sources; no file, network or settings
 * function; every column a declared column or an alias of the query; `$name` parameters exactly
 * as declared.
 */
function checkCustomWalls(
  root: AstNode,
  datasets: Dataset[],
  query: ApprovedQuery,
  refuse: (reason: string) => never,
): void {
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
      if (!byId.has(lower(n.table_name)) && !cteNames.has(lower(n.table_name))) {
        refuse(`unknown table ${lower(n.table_name)}`);
      }
    }
    if ((n.type === "BASE_TABLE" || n.type === "SUBQUERY" || n.type === "JOIN") && "sample" in n) {
      if (typeof n.alias === "string" && n.alias !== "") relations.add(lower(n.alias));
    }
    if (n.class === "FUNCTION") {
      if (n.schema !== "" || n.catalog !== "") refuse("qualified function names are not allowed");
      if (FORBIDDEN_FUNCTIONS.test(lower(n.function_name))) refuse("function not allowed");
      if (!CUSTOM_FUNCTIONS.has(lower(n.function_name))) {
        refuse(`function ${lower(n.function_name)} is not on the custom rule's list`);
      }
    }
    if (n.class === "WINDOW" && !CUSTOM_FUNCTIONS.has(lower(n.function_name))) {
      refuse(`function ${lower(n.function_name)} is not on the custom rule's list`);
    }
    if (n.class === "POSITIONAL_REFERENCE") refuse("positional references (#n) are not allowed");
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
  for (const p of parameters) if (!declared.has(p)) refuse("uses an undeclared or positional parameter");
  for (const p of declared) if (!parameters.has(p)) refuse("declares a parameter it does not use");
}

/**
 * Checks every approved query of a contract: the rule's grammar above, then planning against
 * empty tables of the declared schemas in a throwaway locked engine (which proves columns exist,
 * types line up, parameters are exactly the declared ones, outputs are scalars of allowed names).
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
