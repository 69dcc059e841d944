/**
 * Runs one approved query: typed parameters bound as values, the prepared plan's output policy
 * applied, a timeout and a row cap enforced. Engine errors never leave verbatim.
 */
import type { Json } from "@duckdb/node-api";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { checkApprovedQuery } from "./check.js";
import type { DifferencingGuard } from "./differencing.js";
import type { SqlEngine } from "./engine.js";
import { QueryFailedError, QueryTimeoutError, ResultTooLargeError } from "./errors.js";
import { type BoundParameter, validateParameters } from "./params.js";
import { applyOutputPolicy, type OutputColumn, planQuery, type QueryPlan } from "./policy.js";

export interface QueryResult {
  columns: OutputColumn[];
  rows: Json[][];
  /**
   * DP policies only: rows are exact, unsuppressed and end with the hidden columns; they may leave
   * only through enclave/dp's applyDp with this spec (the serialisers below refuse them).
   */
  dp?: QueryPlan["dp"];
}

interface CachedPlan {
  /** The approved query the plan was made from; a different definition gets a new plan. */
  definition: string;
  plan: Promise<QueryPlan>;
  /** Runs on one plan share its connection and statement, so they go one at a time. */
  tail: Promise<unknown>;
}

async function cachedPlan(engine: SqlEngine, query: ApprovedQuery): Promise<CachedPlan> {
  const definition = JSON.stringify(query);
  const existing = engine.plans.get(query.id) as CachedPlan | undefined;
  if (existing?.definition === definition) return existing;
  const plan = (async () =>
    planQuery(engine, await checkApprovedQuery(engine, [...engine.datasets.values()], query)))();
  const entry: CachedPlan = { definition, plan, tail: Promise.resolve() };
  engine.plans.set(query.id, entry);
  plan.catch(() => engine.plans.delete(query.id));
  if (existing)
    existing.tail = existing.tail.then(async () => (await existing.plan).close()).catch(() => undefined);
  return entry;
}

function bind(plan: QueryPlan, params: BoundParameter[]): void {
  const { statement } = plan;
  statement.clearBindings();
  for (const p of params) {
    const index = statement.parameterIndex(p.name);
    const v = p.value;
    if (typeof v === "string") statement.bindVarchar(index, v);
    else if (typeof v === "bigint") statement.bindBigInt(index, v);
    else if (typeof v === "number") statement.bindDouble(index, v);
    else if (typeof v === "boolean") statement.bindBoolean(index, v);
    else if ("days" in v) statement.bindDate(index, v);
    else statement.bindTimestamp(index, v);
  }
}

/**
 * Rows a DP plan may produce before noise, as a multiple of the released-row cap (its noisy
 * threshold or declared domain decides what is released, after this bound).
 */
const DP_ROWS_PER_RESULT_ROW = 10;

async function execute(
  engine: SqlEngine,
  plan: QueryPlan,
  params: BoundParameter[],
  guard: DifferencingGuard | undefined,
): Promise<QueryResult> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    plan.connection.interrupt();
  }, engine.queryTimeoutMs);
  // A failure the engine still raises on the data (dimensions and predicates run under TRY, so
  // this is a last resort) is released as an answer with every group suppressed.
  const suppressedAll: QueryResult = {
    columns: plan.columns,
    rows: [],
    ...(plan.dp ? { dp: plan.dp } : {}),
  };
  try {
    bind(plan, params);
    // Under the aggregation rule the engine returns only groups of at least k people (the k rule
    // is in the statement), so the cap is decided by releasable groups alone. A DP plan's rows
    // are bounded before noise; what it releases is capped again after (enclave/queries.ts).
    const bound = plan.dp ? engine.maxResultRows * DP_ROWS_PER_RESULT_ROW : engine.maxResultRows;
    const reader = await plan.statement.streamAndReadUntil(bound + 1);
    if (reader.currentRowCount > bound) throw new ResultTooLargeError("query result exceeds the row cap");
    const rows = applyOutputPolicy(plan, reader.getRows(), reader.getRowsJson(), guard);
    return { columns: plan.columns, rows, ...(plan.dp ? { dp: plan.dp } : {}) };
  } catch (e) {
    if (isCleanroomError(e)) throw e;
    if (timedOut) throw new QueryTimeoutError("query exceeded its time limit", { cause: e });
    return suppressedAll;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `query` with `params`. `guard`: the contract's differencing guard, which remembers what this
 * query released (absent: no history is kept, e.g. in engine-level tests).
 */
export async function runApprovedQuery(
  engine: SqlEngine,
  query: ApprovedQuery,
  params: Record<string, unknown>,
  guard?: DifferencingGuard,
): Promise<QueryResult> {
  const bound = validateParameters(query.parameters, params);
  let entry: CachedPlan;
  let plan: QueryPlan;
  try {
    entry = await cachedPlan(engine, query);
    plan = await entry.plan;
  } catch (e) {
    throw isCleanroomError(e) ? e : new QueryFailedError(e);
  }
  const run = entry.tail.then(() => execute(engine, plan, bound, guard));
  entry.tail = run.catch(() => undefined);
  return run;
}

function csvCell(value: Json): string {
  if (value === null) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function releasable(result: QueryResult): void {
  if (result.dp) throw new UsageError("a DP result must be noised before it is serialised");
}

/** RFC 4180 CSV with a header row, "\n" line ends; same result, same bytes. */
export function resultToCsv(result: QueryResult): string {
  releasable(result);
  const lines = [result.columns.map((c) => csvCell(c.name)), ...result.rows.map((r) => r.map(csvCell))];
  return `${lines.map((cells) => cells.join(",")).join("\n")}\n`;
}

/**
 * JSON with a fixed key order; same result, same bytes. Columns and released rows only: how many
 * groups were held back is counted nowhere a party or the host can see.
 */
export function resultToJson(result: QueryResult): string {
  releasable(result);
  return JSON.stringify({
    columns: result.columns.map((c) => ({ name: c.name, type: c.type })),
    rows: result.rows,
  });
}
