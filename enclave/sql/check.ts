/**
 * Contract-load check of approved queries, on DuckDB's own parse tree (json_serialize_sql), never
 * on the SQL text. Under the aggregation rule the positive grammar of protocol/rules/aggregation.ts
 * decides; under the custom rule the generic walls of protocol/rules/custom.ts admit the SQL and
 * dp-rewrite.ts decides its shape. docs/QUERY-RULES.md states both; a refusal is a QueryCheckError naming the query.
 */
import type { ApprovedQuery, Contract, Dataset } from "../../protocol/contract/types.js";
import { type AggregationPlan, compileAggregation } from "../../protocol/rules/aggregation.js";
import { checkCustomWalls } from "../../protocol/rules/custom.js";
import { QueryCheckError } from "../../protocol/rules/errors.js";
import { type AstNode, type ParsedSql, parseSql } from "./ast.js";
import { openEngine, type SqlEngine } from "./engine.js";
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
  checkCustomWalls(root, datasets, query);
  return { query, parsed, tables: [], datasets };
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
