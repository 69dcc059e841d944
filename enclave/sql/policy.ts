/**
 * Output policy the enclave applies whatever the SQL says. Aggregate queries are rewritten on the
 * parse tree to carry one hidden count(DISTINCT <alias>.<identity>) per top-level table
 * reference; every output row whose counts fail the k rule is suppressed and the hidden columns
 * never leave. Only allowed column names may be output, under either policy. Under a DP policy
 * (dp-rewrite.ts) contributions are bounded in the SQL, no exact k cut is made, and the rows go
 * to enclave/dp with the spec the plan carries.
 */
import type { DuckDBConnection, DuckDBPreparedStatement, Json } from "@duckdb/node-api";
import type { DpSpec } from "../dp/apply.js";
import { columnRef, functionCall, renderSql } from "./ast.js";
import type { CheckedQuery, TableUse } from "./check.js";
import { checkDpSpec, dpSpecOf, rewriteForDp } from "./dp-rewrite.js";
import type { SqlEngine } from "./engine.js";
import { QueryCheckError } from "./errors.js";
import { HIDDEN_PREFIX } from "./hidden.js";

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
  /** DP policies only: how enclave/dp noises the rows, and the hidden columns' names and types. */
  dp?: { spec: DpSpec; hiddenColumns: OutputColumn[] };
  close(): void;
}

/**
 * The rewrite: under DP, bounded tables and clamped sums first; then the hidden distinct-identity
 * counts appended to the top-level SELECT list (one per reference; under DP only the threshold's).
 */
async function rewrite(engine: SqlEngine, checked: CheckedQuery): Promise<{ sql: string; counted: number }> {
  const parsed = structuredClone(checked.parsed);
  const dp = checked.query.policy.dp;
  const counted: TableUse[] = dp
    ? await rewriteForDp(engine.connection, checked, parsed, dp)
    : checked.tables;
  const selectList = parsed.statements![0]!.node.select_list as unknown[];
  counted.forEach((t, i) => {
    const ref = columnRef([t.alias, t.dataset.identityColumn]);
    selectList.push(functionCall("count", [ref], true, `${HIDDEN_PREFIX}_k${i}`));
  });
  return { sql: await renderSql(engine.connection, parsed), counted: counted.length };
}

export async function planQuery(engine: SqlEngine, checked: CheckedQuery): Promise<QueryPlan> {
  const { query } = checked;
  const aggregate = query.policy.kind === "aggregate";
  const rewritten = aggregate ? await rewrite(engine, checked) : { sql: query.sql, counted: 0 };
  const { sql } = rewritten;
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
    const hidden = rewritten.counted;
    const visible = statement.columnCount - hidden;
    const allowed = new Set(query.policy.allowedColumns);
    const columns: OutputColumn[] = [];
    for (let i = 0; i < visible; i++) {
      const name = statement.columnName(i);
      if (!allowed.has(name)) throw new QueryCheckError(query.id, "output column not allowed by the policy");
      columns.push({ name, type: statement.columnType(i).toString() });
    }
    const bound = new Set<string>();
    for (let i = 1; i <= statement.parameterCount; i++) bound.add(statement.parameterName(i));
    const declared = query.parameters.map((p) => p.name);
    if (bound.size !== declared.length || !declared.every((p) => bound.has(p))) {
      throw new QueryCheckError(query.id, "parameters differ from the declared ones");
    }
    const plan: QueryPlan = { checked, connection, statement, columns, hidden, close };
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
 * k rule per output row: for every referenced table, its distinct non-null identities in the
 * row's group are 0 or at least k, and at least one table has k or more.
 */
export function passesK(counts: number[], k: number): boolean {
  return counts.every((c) => c === 0 || c >= k) && counts.some((c) => c >= k);
}

/**
 * Applies the plan's policy to raw rows (for the hidden counts) and their JSON rendering. Under DP
 * every row passes with its hidden cells: the k rule is applied to noisy counts by enclave/dp.
 */
export function applyOutputPolicy(
  plan: QueryPlan,
  raw: readonly (readonly unknown[])[],
  json: readonly (readonly Json[])[],
): { rows: Json[][]; groupsSuppressed: number } {
  if (plan.dp) return { rows: json.map((r) => [...r]), groupsSuppressed: 0 };
  const visible = plan.columns.length;
  const k = plan.checked.query.policy.minDistinctIdentities;
  const rows: Json[][] = [];
  let groupsSuppressed = 0;
  raw.forEach((row, i) => {
    if (plan.hidden > 0 && !passesK(row.slice(visible).map(Number), k)) {
      groupsSuppressed++;
      return;
    }
    rows.push(json[i]!.slice(0, visible));
  });
  return { rows, groupsSuppressed };
}
