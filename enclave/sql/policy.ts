/**
 * Output policy the enclave applies whatever the SQL says. Aggregate queries are rewritten on the
 * parse tree to carry one hidden count(DISTINCT <alias>.<identity>) per top-level table
 * reference; every output row whose counts fail the k rule is suppressed and the hidden columns
 * never leave. Only allowed column names may be output, under either policy.
 */
import type { DuckDBConnection, DuckDBPreparedStatement, Json } from "@duckdb/node-api";
import { columnRef, functionCall, type ParsedSql, renderSql } from "./ast.js";
import { type CheckedQuery, HIDDEN_PREFIX } from "./check.js";
import type { SqlEngine } from "./engine.js";
import { QueryCheckError } from "./errors.js";

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
  close(): void;
}

/** The rewrite: append the hidden distinct-identity counts to the top-level SELECT list. */
function withHiddenCounts(checked: CheckedQuery): ParsedSql {
  const parsed = structuredClone(checked.parsed);
  const root = parsed.statements![0]!.node;
  const selectList = root.select_list as unknown[];
  checked.tables.forEach((t, i) => {
    const ref = columnRef([t.alias, t.dataset.identityColumn]);
    selectList.push(functionCall("count", [ref], true, `${HIDDEN_PREFIX}_k${i}`));
  });
  return parsed;
}

export async function planQuery(engine: SqlEngine, checked: CheckedQuery): Promise<QueryPlan> {
  const { query } = checked;
  const aggregate = query.policy.kind === "aggregate";
  const sql = aggregate ? await renderSql(engine.connection, withHiddenCounts(checked)) : query.sql;
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
    const hidden = aggregate ? checked.tables.length : 0;
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
    return { checked, connection, statement, columns, hidden, close };
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

/** Applies the plan's policy to raw rows (for the hidden counts) and their JSON rendering. */
export function applyOutputPolicy(
  plan: QueryPlan,
  raw: readonly (readonly unknown[])[],
  json: readonly (readonly Json[])[],
): { rows: Json[][]; groupsSuppressed: number } {
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
