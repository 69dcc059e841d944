/**
 * Runs one approved query: typed parameters bound as values, the prepared plan's output policy
 * applied, a timeout and a row cap enforced. Engine errors never leave verbatim.
 */
import { type Json, LIST, listValue, UBIGINT } from "@duckdb/node-api";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { DpRelease } from "../dp/apply.js";
import type { Rng } from "../dp/random.js";
import { checkApprovedQuery } from "./check.js";
import type { DifferencingGuard, PeopleSets } from "./differencing.js";
import { UNIT_FROM, UNIT_SKIP, UNIT_TO } from "./dp-rewrite.js";
import type { SqlEngine } from "./engine.js";
import { QueryFailedError, QueryTimeoutError, ResultTooLargeError } from "./errors.js";
import { type BoundParameter, validateParameters } from "./params.js";
import {
  applyOutputPolicy,
  canonicalRows,
  compareRows,
  type OutputColumn,
  planQuery,
  type QueryPlan,
  readAggregationRows,
} from "./policy.js";

export interface QueryResult {
  columns: OutputColumn[];
  rows: Json[][];
  /**
   * DP policies run without a noise source only (the privacy audits, which sample the release many
   * times over one exact result): rows are exact, unsuppressed and end with the hidden columns; they
   * may leave only through enclave/dp's applyDp with this spec (the serialisers below refuse them).
   */
  dp?: QueryPlan["dp"];
  /**
   * DP runs with a noise source: true when the noisy rows exceeded the released-row cap and the
   * first ones in canonical order were kept (post-processing of the noisy output).
   */
  truncated?: boolean;
  /** Guarded plans only: the people sets behind the released rows (what the differencing guard recorded). */
  released?: PeopleSets[];
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

/** Every unit hash, and the most units one run may find failing before it gives up on them. */
const ALL_UNITS = { from: 0n, to: 2n ** 64n - 1n };
const MAX_FAILING_UNITS = 256;

/** A custom plan reads the units whose identity hash is in [from, to] and not in `skip`. */
function bindUnits(plan: QueryPlan, from: bigint, to: bigint, skip: readonly bigint[]): void {
  const { statement } = plan;
  statement.bindUBigInt(statement.parameterIndex(UNIT_FROM), from);
  statement.bindUBigInt(statement.parameterIndex(UNIT_TO), to);
  statement.bindList(statement.parameterIndex(UNIT_SKIP), listValue([...skip]), LIST(UBIGINT));
}

/**
 * The units (identity hashes) on whose own data a custom plan's SQL fails. Under the custom rule
 * every dataset table is restricted to one unit's rows, and every scan of a dataset is filtered to
 * the run's units, so whether a unit fails depends on that unit's data alone; a run that skips
 * exactly the failing units is the query over a per-unit filter of the data, which keeps its
 * sensitivity (one person still changes at most one unit). Bisection over the sorted unit hashes,
 * each probe a run of the same statement over a span of them (about 2 log2(units) probes per
 * failing unit); the run's time limit bounds the search, and past MAX_FAILING_UNITS it stops
 * (the caller releases no data).
 */
async function failingUnits(plan: QueryPlan, expired: () => boolean): Promise<bigint[] | undefined> {
  const units = (await plan.connection.runAndReadAll(plan.unitsSql!)).getRows().map((r) => r[0] as bigint);
  const skip: bigint[] = [];
  const fails = async (from: bigint, to: bigint): Promise<boolean> => {
    bindUnits(plan, from, to, skip);
    try {
      const result = await plan.statement.stream();
      for await (const _ of result.yieldRows()) {
        // drained only to surface an error raised on any row
      }
      return false;
    } catch (e) {
      // An interrupted probe is the time limit, not a failing unit.
      if (isCleanroomError(e) || expired()) throw e;
      return true;
    }
  };
  // Over the sorted hashes units[i..j]: a probe reads the units whose hash lies in that span.
  const search = async (i: number, j: number): Promise<boolean> => {
    if (!(await fails(units[i]!, units[j]!))) return true;
    if (i === j) {
      skip.push(units[i]!);
      return skip.length <= MAX_FAILING_UNITS;
    }
    const mid = i + Math.floor((j - i) / 2);
    return (await search(i, mid)) && (await search(mid + 1, j));
  };
  return units.length === 0 || (await search(0, units.length - 1)) ? skip : undefined;
}

function bind(plan: QueryPlan, params: BoundParameter[]): void {
  const { statement } = plan;
  statement.clearBindings();
  if (plan.checked.query.policy.kind === "custom") bindUnits(plan, ALL_UNITS.from, ALL_UNITS.to, []);
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
 * A DP run streamed through its release: the exact rows are never bounded (how many there are is
 * the data's business), only the released ones are, after noise, by the cap in canonical order.
 */
async function releaseDp(
  engine: SqlEngine,
  plan: QueryPlan,
  dp: NonNullable<QueryPlan["dp"]>,
  rng: Rng,
): Promise<QueryResult> {
  const cap = engine.maxResultRows;
  const columns = [...plan.columns, ...dp.hiddenColumns];
  const release = new DpRelease(columns, dp.spec, rng);
  const result = await plan.statement.stream();
  for await (const rows of result.yieldRowsJson()) {
    release.add(rows);
    if (release.size > 2 * cap) release.prune(cap, compareRows);
  }
  return released(release, cap, dp.spec.groups);
}

/**
 * The release's rows in canonical order, cut at the cap (and said so). Public groups release
 * exactly their declared domain, whatever the data: a domain above the cap fails every run alike.
 */
function released(release: DpRelease<OutputColumn>, cap: number, groups: string): QueryResult {
  const out = release.finish();
  if (groups === "public" && out.rows.length > cap) {
    throw new ResultTooLargeError("the declared domain has more groups than the row cap");
  }
  const rows = canonicalRows(out.rows as Json[][]);
  return {
    columns: out.columns,
    rows: rows.slice(0, cap),
    ...(rows.length > cap ? { truncated: true } : {}),
  };
}

async function execute(
  engine: SqlEngine,
  plan: QueryPlan,
  params: BoundParameter[],
  o: RunOptions,
): Promise<QueryResult> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    plan.connection.interrupt();
  }, engine.queryTimeoutMs);
  // A failure the engine still raises on the data (dimensions and predicates run under TRY, so
  // this is a last resort) is released as an answer with every group suppressed: under DP, the
  // release of no data (noise alone).
  const suppressedAll = (): QueryResult => {
    if (plan.dp && o.rng) {
      const { spec, hiddenColumns } = plan.dp;
      return released(
        new DpRelease([...plan.columns, ...hiddenColumns], spec, o.rng),
        engine.maxResultRows,
        spec.groups,
      );
    }
    return { columns: plan.columns, rows: [], ...(plan.dp ? { dp: plan.dp } : {}) };
  };
  try {
    bind(plan, params);
    if (plan.dp && o.rng) return await releaseDp(engine, plan, plan.dp, o.rng);
    if (plan.dp) {
      const reader = await plan.statement.streamAndReadAll();
      return { columns: plan.columns, rows: reader.getRowsJson(), dp: plan.dp };
    }
    // Under the aggregation rule the engine returns only groups of at least k people (the k rule
    // is in the statement), so the cap is decided by releasable groups alone.
    const engineRows = await readAggregationRows(
      plan,
      await plan.statement.stream(),
      engine.maxResultRows,
      () => new ResultTooLargeError("query result exceeds the row cap"),
    );
    const { rows, released } = applyOutputPolicy(plan, engineRows, o.guard);
    return { columns: plan.columns, rows, ...(released ? { released } : {}) };
  } catch (e) {
    if (isCleanroomError(e)) throw e;
    if (timedOut) throw new QueryTimeoutError("query exceeded its time limit", { cause: e });
    if (plan.dp && o.rng && plan.checked.query.policy.kind === "custom") {
      try {
        const skip = await failingUnits(plan, () => timedOut);
        if (skip) {
          bindUnits(plan, ALL_UNITS.from, ALL_UNITS.to, skip);
          return await releaseDp(engine, plan, plan.dp, o.rng);
        }
      } catch (again) {
        if (isCleanroomError(again)) throw again;
        if (timedOut) throw new QueryTimeoutError("query exceeded its time limit", { cause: again });
      }
    }
    return suppressedAll();
  } finally {
    clearTimeout(timer);
  }
}

/** The contract datasets `query` reads in its top-level FROM (aggregation rule; empty under custom). */
export async function datasetsRead(engine: SqlEngine, query: ApprovedQuery): Promise<string[]> {
  try {
    const plan = await (await cachedPlan(engine, query)).plan;
    return plan.checked.tables.map((t) => t.dataset.id);
  } catch (e) {
    throw isCleanroomError(e) ? e : new QueryFailedError(e);
  }
}

export interface RunOptions {
  /** The contract's differencing guard, which remembers what this query released (absent: no history is kept, e.g. in engine-level tests). */
  guard?: DifferencingGuard;
  /** The noise source of a DP release; without it a DP plan's exact rows are returned (privacy audits only). */
  rng?: Rng;
}

/** Runs `query` with `params`. */
export async function runApprovedQuery(
  engine: SqlEngine,
  query: ApprovedQuery,
  params: Record<string, unknown>,
  o: RunOptions = {},
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
  const run = entry.tail.then(() => execute(engine, plan, bound, o));
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
