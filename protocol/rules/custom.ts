/**
 * The custom rule's generic walls, on DuckDB's parse tree (pure: the enclave's admission and the
 * partner's review call the same checks). The rule's shape and per-person rewrite are the
 * enclave's (enclave/sql/dp-rewrite.ts).
 */
import type { ApprovedQuery, Dataset } from "../contract/types.js";
import { refuseUnsafeIntegers } from "./aggregation.js";
import { QueryCheckError } from "./errors.js";
import { CUSTOM_FUNCTIONS } from "./functions.js";
import { type AstNode, HIDDEN_PREFIX, isNode, lower, walk } from "./tree.js";

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

/**
 * The custom rule's generic walls (its shape and the per-person rewrite are dp-rewrite.ts's):
 * only dataset tables, CTEs, joins and subqueries as sources; no file, network or settings
 * function, only functions of CUSTOM_FUNCTIONS; no integer constant beyond ±2^53; every column a
 * declared column or an alias of the query; `$name` parameters exactly as declared. The enclave
 * checks them at admission and the review shows their refusals.
 */
export function checkCustomWalls(root: AstNode, datasets: Dataset[], query: ApprovedQuery): void {
  const refuse = (reason: string): never => {
    throw new QueryCheckError(query.id, reason);
  };
  refuseUnsafeIntegers(root, refuse);
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
