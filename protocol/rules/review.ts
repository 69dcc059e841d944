/**
 * The contract review: what a party reads before it signs. Built from the contract and each
 * approved query's parse tree (DuckDB's json_serialize_sql; the caller parses, this stays pure):
 * per dataset its owner, identity and column roles; per query the rule, who runs it and who gets
 * the result, every table and column it reads, each output and how it is computed, k, parameters
 * and what they filter, join keys, DP settings, run limits; and warnings a reviewer should weigh,
 * including queries the rules refuse (shown with the reason, never thrown).
 *
 * Aggregation queries are compiled by the same grammar the enclave runs (aggregation.ts), so their
 * review is exact. Custom queries are summarised from their tree (tables read anywhere, outputs
 * from the policy's columns, the DP settings); the enclave checks their full shape when it loads
 * the contract.
 */
import {
  type AnalysisRuleKind,
  type ApprovedQuery,
  type ColumnType,
  type Contract,
  type Dataset,
  type DpColumn,
  type DpDomain,
  type DpGroups,
  differencingGuarded,
  type Measure,
  MIN_K,
  type ParameterType,
  partyBudget,
} from "../contract/types.js";
import {
  AGGREGATE_CALLS,
  type AggregateUse,
  type AggregationPlan,
  type ColumnRole,
  type ColumnUse,
  compileAggregation,
  rolesOf,
} from "./aggregation.js";
import { checkCustomWalls } from "./custom.js";
import { QueryCheckError } from "./errors.js";
import { printExpression } from "./print.js";
import {
  type AstNode,
  conjuncts,
  isColumnEquality,
  isNode,
  lower,
  nodes,
  type ParsedSql,
  shape,
  walk,
} from "./tree.js";

/** k below this is flagged (the contract floor is MIN_K). */
export const REVIEW_LOW_K = 50;
/** Epsilon per run above this is flagged. */
export const REVIEW_HIGH_EPSILON = 1;
/** A party's ε total on a contract above this is flagged. */
export const REVIEW_HIGH_BUDGET = 10;

export type ReviewWarningCode =
  /** The rules refuse the query: the enclave will not load the contract. */
  | "refused"
  /** min, max or median of a measure: one person's value. */
  | "one-person-value"
  | "low-k"
  | "custom-rule"
  | "high-epsilon"
  | "high-budget"
  | "no-max-runs"
  /** An aggregation query whose differencing guard the contract turns off. */
  | "no-differencing-guard"
  /** Two answers (two queries, or two parameter values of one) whose difference is below k. */
  | "subtraction";

export interface ReviewWarning {
  code: ReviewWarningCode;
  message: string;
  /** The query or queries it is about. */
  queries?: string[];
  /** The dataset it is about (an owner's analysis rule). */
  dataset?: string;
}

export interface ColumnReview {
  name: string;
  type: ColumnType;
  /** Roles its owner declared; none means no aggregation query may read it. */
  roles: ColumnRole[];
}

export interface DatasetReview {
  id: string;
  owner: string;
  ownerName: string;
  format: "csv" | "parquet";
  identity: { column: string; format: "sha256-hex" | "any" };
  columns: ColumnReview[];
  /** Measure columns with the aggregates their owner allows. */
  measures: Measure[];
  warnings: ReviewWarning[];
}

/** One table reference a query reads (a dataset read twice appears twice). */
export interface TableReadReview {
  dataset: string;
  alias: string;
  owner: string;
  /**
   * Aggregation: the distinct identities of this dataset every output row needs. Custom: the
   * floor of the noisy threshold ("private" groups); null where no threshold applies.
   */
  k: number | null;
  /** Columns of it the query reads (custom: every declared column the SQL may refer to). */
  columns: ColumnReview[];
}

export interface JoinReview {
  dataset: string;
  alias: string;
  type: string;
  /** Key equalities, e.g. "p.user_id = e.user_id". */
  keys: string[];
  /** The whole ON condition. */
  text: string;
}

export interface OutputReview {
  name: string;
  kind: "dimension" | "aggregate";
  /** The expression as the contract's SQL spells it ("" when the review cannot find it). */
  text: string;
  /** Aggregates it is computed from, e.g. "count(DISTINCT e.user_id)", "sum(p.amount)". */
  aggregates: string[];
  /** Custom rule: how the column is noised. */
  noise?: DpColumn;
  /** Custom rule, public groups: the declared values of this key. */
  domain?: (string | number | boolean)[];
}

export interface ParameterReview {
  name: string;
  type: ParameterType;
  /** Columns (alias.column) it is compared with. */
  filters: string[];
}

export interface DpReview {
  /** Charged to every recipient by each run. */
  epsilon: number;
  /** The budget this query declares. */
  budget: number;
  /** Each party's ε total on the contract: the smallest budget any of its DP queries declares. */
  partyBudget: number;
  /** Runs of this query a party's total pays for, if it spends ε on nothing else. */
  runsPerBudget: number;
  /** 0 for "single" and "public" groups; a private-groups threshold's delta, null for the enclave default. */
  delta: number | null;
  groups: DpGroups;
  domain?: DpDomain[];
  maxRowsPerIdentity?: number;
  clamp?: { lower: number; upper: number };
}

export interface QueryReview {
  id: string;
  description?: string;
  rule: AnalysisRuleKind;
  status: "admitted" | "refused";
  /** Why the rules refuse it. */
  refusal?: string;
  sql: string;
  runners: string[];
  recipients: string[];
  k: number;
  reads: TableReadReview[];
  joins: JoinReview[];
  where?: string;
  groupBy: string[];
  having?: string;
  outputs: OutputReview[];
  parameters: ParameterReview[];
  dp?: DpReview;
  /**
   * Aggregation rule: whether the enclave suppresses a row whose people differ from those of a row
   * this query released before by fewer than k. null under the custom rule (noise bounds it).
   */
  differencingGuard: boolean | null;
  /** null: no limit in the contract. */
  maxRuns: number | null;
  warnings: ReviewWarning[];
}

export interface ContractReview {
  contract: string;
  /** The digest a party signs, where the caller computed it. */
  digest?: string;
  parties: { id: string; name: string }[];
  datasets: DatasetReview[];
  queries: QueryReview[];
  /** Every warning: the datasets', the queries' and those across queries. */
  warnings: ReviewWarning[];
  /** Whether the rules admit every query. */
  admitted: boolean;
}

/** The parse tree of one approved query's SQL (json_serialize_sql output). */
export type ParseQuery = (query: ApprovedQuery) => ParsedSql;

const ONE_PERSON: ReadonlySet<string> = new Set(["min", "max", "median"]);

function reviewDataset(contract: Contract, d: Dataset): DatasetReview {
  const warnings: ReviewWarning[] = [];
  for (const m of d.analysis.measures) {
    const risky = m.aggregates.filter((a) => ONE_PERSON.has(a));
    if (risky.length > 0) {
      warnings.push({
        code: "one-person-value",
        dataset: d.id,
        message: `${d.id}.${m.column} allows ${risky.join(", ")}: an aggregation query may release one person's value of each group`,
      });
    }
  }
  return {
    id: d.id,
    owner: d.owner,
    ownerName: contract.parties.find((p) => p.id === d.owner)?.name ?? d.owner,
    format: d.format,
    identity: { column: d.identityColumn, format: d.identityFormat ?? "any" },
    columns: d.columns.map((c) => ({ name: c.name, type: c.type, roles: rolesOf(d, c.name) })),
    measures: d.analysis.measures.map((m) => ({ column: m.column, aggregates: [...m.aggregates] })),
    warnings,
  };
}

function aggregateText(a: AggregateUse): string {
  if (!a.column) return "count(*)";
  const ref = `${a.column.table.alias}.${a.column.column.name}`;
  return a.fn === "count-distinct" ? `count(DISTINCT ${ref})` : `${a.fn}(${ref})`;
}

function columnText(u: ColumnUse): string {
  return `${u.table.alias}.${u.column.name}`;
}

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

/** The statement's one SELECT tree, or the reason there is none (as the enclave words it). */
function statementOf(parsed: ParsedSql): AstNode | string {
  if (parsed.error || !parsed.statements) {
    const detail = (parsed as { error_message?: unknown }).error_message;
    return `is not a single SELECT statement${typeof detail === "string" ? ` (${detail})` : ""}`;
  }
  if (parsed.statements.length !== 1) return "must be exactly one statement";
  return parsed.statements[0]!.node;
}

/** The query's fields that come from the contract alone, with nothing read yet. */
function baseReview(query: ApprovedQuery, partyBudget: number): QueryReview {
  return {
    id: query.id,
    ...(query.description === undefined ? {} : { description: query.description }),
    rule: query.policy.kind,
    status: "admitted",
    sql: query.sql,
    runners: [...query.runners],
    recipients: [...query.recipients],
    k: query.policy.minDistinctIdentities,
    reads: [],
    joins: [],
    groupBy: [],
    outputs: [],
    parameters: query.parameters.map((p) => ({ name: p.name, type: p.type, filters: [] })),
    ...(query.policy.dp ? { dp: dpReview(query.policy.dp, partyBudget) } : {}),
    differencingGuard: query.policy.kind === "aggregation" ? differencingGuarded(query.policy) : null,
    maxRuns: query.policy.maxRuns ?? null,
    warnings: [],
  };
}

function dpReview(dp: NonNullable<ApprovedQuery["policy"]["dp"]>, partyBudget: number): DpReview {
  return {
    epsilon: dp.epsilon,
    budget: dp.budget,
    partyBudget,
    runsPerBudget: Math.floor(partyBudget / dp.epsilon + 1e-9),
    delta: dp.groups === "private" ? (dp.delta ?? null) : 0,
    groups: dp.groups,
    ...(dp.domain ? { domain: dp.domain.map((d) => ({ column: d.column, values: [...d.values] })) } : {}),
    ...(dp.maxRowsPerIdentity === undefined ? {} : { maxRowsPerIdentity: dp.maxRowsPerIdentity }),
    ...(dp.clamp ? { clamp: { lower: dp.clamp.lower, upper: dp.clamp.upper } } : {}),
  };
}

/** Fills `r` from the compiled aggregation plan. */
function fromPlan(r: QueryReview, plan: AggregationPlan): void {
  r.reads = plan.tables.map((t) => {
    const seen = new Map<string, ColumnReview>();
    for (const u of plan.columns) {
      if (u.table !== t || seen.has(u.column.name)) continue;
      seen.set(u.column.name, { name: u.column.name, type: u.column.type, roles: [...u.roles] });
    }
    return {
      dataset: t.dataset.id,
      alias: t.alias,
      owner: t.dataset.owner,
      k: r.k,
      columns: [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    };
  });
  r.joins = plan.joins.map((j) => ({
    dataset: j.table.dataset.id,
    alias: j.table.alias,
    type: j.type,
    keys: j.keys.map(([a, b]) => `${columnText(a)} = ${columnText(b)}`),
    text: j.text,
  }));
  if (plan.where !== undefined) r.where = plan.where;
  r.groupBy = [...plan.groupBy];
  if (plan.having !== undefined) r.having = plan.having;
  r.outputs = plan.outputs.map((o) => ({
    name: o.name,
    kind: o.kind,
    text: o.text,
    aggregates: unique(o.aggregates.map(aggregateText)),
  }));
  for (const p of r.parameters) {
    p.filters = unique(plan.parameters.filter((u) => u.name === p.name).map((u) => columnText(u.column)));
  }
  for (const w of plan.warnings) r.warnings.push({ code: "one-person-value", queries: [r.id], message: w });
}

/** Every dataset table a custom query reads anywhere in its tree, and what it may read of each. */
function fromCustomTree(
  r: QueryReview,
  query: ApprovedQuery,
  root: AstNode,
  datasets: Dataset[],
): string | undefined {
  // The enclave's own walls first: a refusal throws QueryCheckError with the enclave's reason.
  checkCustomWalls(root, datasets, query);
  const byId = new Map(datasets.map((d) => [lower(d.id), d]));
  const ctes = new Set<string>();
  walk(root, (n) => {
    const map = isNode(n.cte_map) ? nodes(n.cte_map.map) : [];
    for (const e of map) ctes.add(lower(e.key));
  });
  const tables: { alias: string; dataset: Dataset; columns: Map<string, ColumnReview> }[] = [];
  walk(root, (n) => {
    if (n.type !== "BASE_TABLE") return;
    const name = lower(n.table_name);
    const dataset = byId.get(name);
    if (dataset && !ctes.has(name)) {
      tables.push({ alias: lower(n.alias || n.table_name), dataset, columns: new Map() });
    }
  });
  if (tables.length === 0) return "dp: the query must read a dataset";
  const k = query.policy.dp?.groups === "private" ? query.policy.minDistinctIdentities : null;

  // Columns: alias.column resolved to its table; anything else to every table declaring the name.
  const byAlias = new Map(tables.map((t) => [t.alias, t]));
  const note = (t: (typeof tables)[number], column: string): void => {
    const c = t.dataset.columns.find((x) => lower(x.name) === column);
    if (c && !t.columns.has(c.name))
      t.columns.set(c.name, { name: c.name, type: c.type, roles: rolesOf(t.dataset, c.name) });
  };
  const refText = new Map<string, string>();
  walk(root, (n) => {
    if (n.class !== "COLUMN_REF" || !Array.isArray(n.column_names)) return;
    const names = n.column_names.map(lower);
    const column = names[names.length - 1]!;
    const owner = names.length === 2 ? byAlias.get(names[0]!) : undefined;
    if (owner) note(owner, column);
    else for (const t of tables) note(t, column);
    refText.set(shape(n), names.join("."));
  });
  r.reads = tables.map((t) => ({
    dataset: t.dataset.id,
    alias: t.alias,
    owner: t.dataset.owner,
    k,
    columns: [...t.columns.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
  }));

  // Joins anywhere in the tree, with their key equalities.
  walk(root, (n) => {
    if (n.type !== "JOIN" || !isNode(n.right) || n.right.type !== "BASE_TABLE") return;
    const right = n.right;
    const dataset = byId.get(lower(right.table_name));
    if (!dataset) return;
    const keys = conjuncts(n.condition).filter(isColumnEquality).map(printExpression);
    r.joins.push({
      dataset: dataset.id,
      alias: lower(right.alias || right.table_name),
      type:
        String(n.ref_type) === "REGULAR"
          ? String(n.join_type)
          : `${String(n.ref_type)} ${String(n.join_type)}`,
      keys,
      text: n.condition === null || n.condition === undefined ? "" : printExpression(n.condition),
    });
  });

  // Parameters: the columns they are compared with, anywhere.
  const compared = (param: unknown, other: unknown): void => {
    if (!isNode(param) || param.class !== "PARAMETER" || !isNode(other) || other.class !== "COLUMN_REF")
      return;
    const p = r.parameters.find((x) => x.name === String(param.identifier));
    const text = refText.get(shape(other));
    if (p && text && !p.filters.includes(text)) p.filters.push(text);
  };
  walk(root, (n) => {
    if (n.class === "COMPARISON") {
      compared(n.left, n.right);
      compared(n.right, n.left);
    } else if (n.class === "BETWEEN") {
      compared(n.lower, n.input);
      compared(n.upper, n.input);
    } else if (n.class === "OPERATOR" && (n.type === "COMPARE_IN" || n.type === "COMPARE_NOT_IN")) {
      const [first, ...rest] = nodes(n.children);
      for (const x of rest) compared(x, first);
    }
  });

  // The top level: WHERE, GROUP BY, HAVING and the outputs the policy lets leave.
  const top = root.type === "SELECT_NODE" ? root : undefined;
  if (top && isNode(top.where_clause)) r.where = printExpression(top.where_clause);
  if (top) r.groupBy = nodes(top.group_expressions).map(printExpression);
  if (top && isNode(top.having)) r.having = printExpression(top.having);
  const items = new Map(nodes(top?.select_list).map((i) => [lower(i.alias), i]));
  for (const i of nodes(top?.select_list)) {
    const name = String(i.alias ?? "");
    if (name !== "" && !query.policy.allowedColumns.includes(name)) {
      return `output column ${name} is not in the policy's allowedColumns`;
    }
  }
  const dp = query.policy.dp;
  for (const name of query.policy.allowedColumns) {
    const item = items.get(lower(name));
    const text = item ? printExpression(item) : "";
    const noise = dp?.columns.find((c) => c.name === name);
    if (noise) {
      r.outputs.push({
        name,
        kind: "aggregate",
        text,
        aggregates: item ? aggregatesIn(item) : [],
        noise: { ...noise },
      });
      continue;
    }
    const domain = dp?.groups === "public" ? dp.domain?.find((d) => d.column === name) : undefined;
    r.outputs.push({
      name,
      kind: "dimension",
      text,
      aggregates: [],
      ...(domain ? { domain: [...domain.values] } : {}),
    });
  }
  return undefined;
}

function aggregatesIn(node: AstNode): string[] {
  const out: string[] = [];
  walk(node, (n) => {
    if (n.class === "FUNCTION" && AGGREGATE_CALLS.has(lower(n.function_name))) out.push(printExpression(n));
  });
  return unique(out);
}

/** Warnings that follow from the contract's numbers alone. */
function policyWarnings(r: QueryReview, query: ApprovedQuery): void {
  const w = (code: ReviewWarningCode, message: string) => r.warnings.push({ code, queries: [r.id], message });
  if (r.k < REVIEW_LOW_K) {
    w(
      "low-k",
      `k = ${r.k} is low: groups of ${r.k} people are released (the floor is ${MIN_K}; ${REVIEW_LOW_K} or more is usual)`,
    );
  }
  const dp = r.dp;
  if (r.differencingGuard === false) {
    w(
      "no-differencing-guard",
      "differencing guard off: two runs whose groups differ by fewer than k people are both released",
    );
  }
  if (query.policy.kind === "custom") {
    w(
      "custom-rule",
      "custom rule: richer SQL than the aggregation grammar (subqueries, CTEs, windows); only noised answers leave, " +
        "and this review summarises its tables, outputs and DP settings, not every expression",
    );
  }
  if (dp && dp.epsilon > REVIEW_HIGH_EPSILON) {
    w(
      "high-epsilon",
      `ε = ${dp.epsilon} per run is high (above ${REVIEW_HIGH_EPSILON}): little noise on each answer`,
    );
  }
  if (dp && dp.partyBudget > REVIEW_HIGH_BUDGET) {
    w(
      "high-budget",
      `each party's ε total on this contract is ${dp.partyBudget}, high (above ${REVIEW_HIGH_BUDGET}): many answers can be combined`,
    );
  }
  if (query.policy.maxRuns === undefined) {
    w(
      "no-max-runs",
      dp
        ? `no maxRuns: runs are bounded only by each recipient's ε total (${dp.runsPerBudget} runs at ε = ${dp.epsilon})`
        : "no maxRuns: the query may run any number of times",
    );
  }
  if (r.status === "admitted" && query.parameters.length > 0) {
    const names = query.parameters.map((p) => `$${p.name}`).join(", ");
    const filters = unique(r.parameters.flatMap((p) => p.filters));
    w(
      "subtraction",
      `answers for two parameter values (${names}${filters.length ? `, filtering ${filters.join(", ")}` : ""}) can be subtracted: ` +
        (dp
          ? "each answer is noised and charges ε to every recipient, so the ε total bounds what their differences reveal"
          : r.differencingGuard
            ? "k holds for each answer, not for their difference; the differencing guard suppresses a row whose " +
              "people differ from a released one by fewer than k, not a larger difference of people a party knows"
            : "k holds for each answer, not for their difference, and the differencing guard is off"),
    );
  }
}

/** What two aggregation queries are compared on: tables, groups, filters, aggregates, alias-free. */
interface Signature {
  tables: string;
  groups: string;
  filters: string;
  aggregates: Map<string, string>;
  groupText: string;
}

function signature(root: AstNode, plan: AggregationPlan): Signature {
  const datasetOf = new Map(plan.tables.map((t) => [t.alias, t.dataset.id.toLowerCase()]));
  const normal = (node: unknown): string => {
    const copy = structuredClone(node);
    walk(copy, (n) => {
      if (n.class === "COLUMN_REF" && Array.isArray(n.column_names) && n.column_names.length === 2) {
        const d = datasetOf.get(lower(n.column_names[0]));
        if (d) n.column_names = [d, lower(n.column_names[1])];
      }
    });
    return shape(copy);
  };
  const joins: string[] = [];
  const joinNodes = (ref: unknown): void => {
    if (!isNode(ref) || ref.type !== "JOIN") return;
    joinNodes(ref.left);
    joins.push(`${String(ref.join_type)}:${normal(ref.condition)}`);
  };
  joinNodes(root.from_table);
  const aggregates = new Map<string, string>();
  nodes(root.select_list).forEach((item, i) => {
    const o = plan.outputs[i];
    if (o?.kind === "aggregate") aggregates.set(normal(item), o.text);
  });
  return {
    tables: plan.tables
      .map((t) => t.dataset.id.toLowerCase())
      .sort()
      .join(","),
    groups: nodes(root.group_expressions).map(normal).sort().join("|"),
    filters: JSON.stringify([normal(root.where_clause ?? null), joins.sort()]),
    aggregates,
    groupText: plan.groupBy.join(", "),
  };
}

/** Pairs of admitted aggregation queries over the same tables and groups with different filters. */
function subtractionPairs(signed: { id: string; sig: Signature }[]): ReviewWarning[] {
  const out: ReviewWarning[] = [];
  for (let i = 0; i < signed.length; i++) {
    for (let j = i + 1; j < signed.length; j++) {
      const a = signed[i]!;
      const b = signed[j]!;
      if (a.sig.tables !== b.sig.tables || a.sig.groups !== b.sig.groups || a.sig.filters === b.sig.filters)
        continue;
      const common = [...a.sig.aggregates].filter(([s]) => b.sig.aggregates.has(s)).map(([, text]) => text);
      if (common.length === 0) continue;
      out.push({
        code: "subtraction",
        queries: [a.id, b.id],
        message:
          `${a.id} and ${b.id} read the same datasets (${a.sig.tables.replaceAll(",", ", ")}), ` +
          `group by the same dimensions (${a.sig.groupText || "no GROUP BY"}) and both release ${common.join(", ")} ` +
          "with different filters: one answer minus the other describes the people who pass one filter and not the other, below k",
      });
    }
  }
  return out;
}

/**
 * Reviews every dataset and approved query of `contract`. `parse` gives each query's parse tree;
 * a query the rules refuse (or that does not parse) is reported as refused with the reason.
 */
export function reviewContract(contract: Contract, parse: ParseQuery): ContractReview {
  const datasets = contract.datasets.map((d) => reviewDataset(contract, d));
  const queries: QueryReview[] = [];
  const signed: { id: string; sig: Signature }[] = [];
  const ids = new Set<string>();
  for (const query of contract.queries) {
    const r = baseReview(query, partyBudget(contract));
    const refuse = (reason: string): void => {
      r.status = "refused";
      r.refusal = reason;
    };
    try {
      const root = ids.has(query.id) ? "duplicate query id" : statementOf(parse(query));
      ids.add(query.id);
      if (typeof root === "string") refuse(root);
      else if (query.policy.kind === "aggregation") {
        const plan = compileAggregation(root, query, contract.datasets);
        const stray = plan.outputs.find((o) => !query.policy.allowedColumns.includes(o.name));
        if (stray) refuse(`output column ${stray.name} is not in the policy's allowedColumns`);
        else {
          fromPlan(r, plan);
          signed.push({ id: query.id, sig: signature(root, plan) });
        }
      } else {
        const reason = fromCustomTree(r, query, root, contract.datasets);
        if (reason !== undefined) refuse(reason);
      }
    } catch (e) {
      refuse(
        e instanceof QueryCheckError
          ? e.reason
          : `could not be reviewed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (r.status === "refused") {
      r.warnings = [{ code: "refused", queries: [r.id], message: `refused: ${r.refusal}` }];
    }
    policyWarnings(r, query);
    queries.push(r);
  }
  const across = subtractionPairs(signed);
  return {
    contract: contract.id,
    parties: contract.parties.map((p) => ({ id: p.id, name: p.name })),
    datasets,
    queries,
    warnings: [...datasets.flatMap((d) => d.warnings), ...queries.flatMap((q) => q.warnings), ...across],
    admitted: queries.every((q) => q.status === "admitted"),
  };
}

// ---------------------------------------------------------------------------------------------
// Text rendering

/** Default width of the rendered review, in columns. */
export const REVIEW_WIDTH = 100;

/** Joins words that wrapping must keep on one line (contract strings hold no control character). */
const GLUE = "\u0000";
const glued = (...words: string[]): string => words.join(GLUE);

/** Word-wraps `text` after `first` (the line's start); continuation lines start with `indent`. */
function wrap(first: string, text: string, indent: string, width: number): string[] {
  const lines: string[] = [];
  let line = first;
  let fresh = true;
  for (const part of text.split(/ +/)) {
    if (part === "") continue;
    const word = part.replaceAll(GLUE, " ");
    if (!fresh && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line += (fresh ? "" : " ") + word;
    fresh = false;
  }
  lines.push(line);
  return lines;
}

const LABEL = 14;

function list(xs: readonly (string | number | boolean)[]): string {
  return xs.length === 0 ? "(none)" : xs.join(", ");
}

function rolesText(columns: ColumnReview[]): string {
  const groups: [string, string[]][] = [
    ["identity", columns.filter((c) => c.roles.includes("identity")).map((c) => c.name)],
    [
      "join",
      columns.filter((c) => c.roles.includes("join") && !c.roles.includes("identity")).map((c) => c.name),
    ],
    ["dimensions", columns.filter((c) => c.roles.includes("dimension")).map((c) => c.name)],
    ["measures", columns.filter((c) => c.roles.includes("measure")).map((c) => c.name)],
    ["no role", columns.filter((c) => c.roles.length === 0).map((c) => c.name)],
  ];
  return groups
    .filter(([, names]) => names.length > 0)
    .map(([role, names]) => `${role} ${names.join(", ")}`)
    .join("; ");
}

function noiseText(o: OutputReview, dp: DpReview | undefined): string {
  const n = o.noise;
  if (!n) return "";
  if (n.kind === "avg") return `noised avg = noisy ${n.sum} / noisy ${n.count}`;
  if (n.kind === "sum") {
    const clamp = dp?.clamp
      ? `, inputs clamped to [${glued(`${dp.clamp.lower},`, String(dp.clamp.upper))}]`
      : "";
    return `noised sum, ${n.decimals ?? 0} decimals${clamp}`;
  }
  return `noised ${n.kind}`;
}

/** The review as plain text for a terminal, lines at most `width` columns where words allow. */
export function renderReview(review: ContractReview, width = REVIEW_WIDTH): string {
  const out: string[] = [];
  const pad = " ".repeat(2 + LABEL);
  const field = (label: string, text: string, indent = pad): void => {
    out.push(...wrap(`  ${label.padEnd(LABEL)}`, text, indent, width));
  };
  const warn = (w: ReviewWarning, first: string): void => {
    out.push(...wrap(`${first}! `, w.message, `${pad}  `, width));
  };

  out.push(`CONTRACT REVIEW  ${review.contract}`);
  if (review.digest) field("digest", review.digest);
  field("parties", review.parties.map((p) => (p.name === p.id ? p.id : `${p.id} (${p.name})`)).join(", "));
  out.push("", `DATASETS (${review.datasets.length})`);
  for (const d of review.datasets) {
    out.push(
      "",
      `${d.id}  owned by ${d.owner}${d.ownerName === d.owner ? "" : ` (${d.ownerName})`}, ${d.format}`,
    );
    const typed = (c: ColumnReview) => glued(c.name, c.type);
    const identity = d.columns.find((c) => c.name === d.identity.column);
    field("identity", `${identity ? typed(identity) : d.identity.column}, ${d.identity.format}`);
    field("join", list(d.columns.filter((c) => c.roles.includes("join")).map(typed)));
    field("dimensions", list(d.columns.filter((c) => c.roles.includes("dimension")).map(typed)));
    field(
      "measures",
      list(
        d.measures.map((m) => {
          const c = d.columns.find((x) => x.name === m.column);
          return `${c ? typed(c) : m.column} (${m.aggregates.join(", ")})`;
        }),
      ),
    );
    field("no role", list(d.columns.filter((c) => c.roles.length === 0).map(typed)));
    for (const [i, w] of d.warnings.entries()) warn(w, `  ${(i === 0 ? "warnings" : "").padEnd(LABEL)}`);
  }

  const refused = review.queries.filter((q) => q.status === "refused");
  out.push(
    "",
    `QUERIES (${review.queries.length}: ${review.queries.length - refused.length} admitted, ${refused.length} refused)`,
  );
  review.queries.forEach((q, i) => {
    const rule = q.rule === "custom" ? "custom rule, differential privacy" : "aggregation rule";
    out.push("", `[${i + 1}] ${q.id}  ${rule}  ${q.status === "admitted" ? "ADMITTED" : "REFUSED"}`);
    if (q.description) field("about", q.description);
    if (q.refusal) field("refused", q.refusal);
    field("runners", list(q.runners));
    field("recipients", list(q.recipients));
    q.reads.forEach((t, j) => {
      const k =
        q.rule === "aggregation"
          ? `k >= ${t.k}`
          : t.k !== null
            ? `noisy threshold, k >= ${t.k}`
            : q.dp?.groups === "single"
              ? "no k threshold: one noised row"
              : "no k threshold: every declared group is released, noised";
      field(j === 0 ? "reads" : "", `${t.dataset} AS ${t.alias}, ${k}`);
      out.push(...wrap(`${pad}  `, rolesText(t.columns) || "(no column)", `${pad}    `, width));
    });
    q.joins.forEach((j, n) => {
      field(n === 0 ? "joins" : "", `${j.type} JOIN ${j.dataset} AS ${j.alias}, keys ${list(j.keys)}`);
      if (j.text !== j.keys.join("") && j.text !== "")
        out.push(...wrap(`${pad}  ON `, j.text, `${pad}    `, width));
    });
    if (q.where !== undefined) field("where", q.where);
    if (q.groupBy.length > 0) field("group by", q.groupBy.join(", "));
    if (q.having !== undefined) field("having", q.having);
    const nameWidth = Math.max(0, ...q.outputs.map((o) => o.name.length));
    q.outputs.forEach((o, n) => {
      const how = [
        o.text || "(not found in the SQL)",
        noiseText(o, q.dp),
        o.domain ? `domain ${list(o.domain)}` : "",
      ]
        .filter((s) => s !== "")
        .join("; ");
      const first = `  ${(n === 0 ? "outputs" : "").padEnd(LABEL)}${o.name.padEnd(nameWidth)}  ${o.kind.padEnd(9)}  `;
      out.push(...wrap(first, how, " ".repeat(first.length), width));
    });
    q.parameters.forEach((p, n) => {
      const filters = p.filters.length ? `filters ${p.filters.join(", ")}` : "filters (not found)";
      field(n === 0 ? "parameters" : "", `$${p.name} ${p.type}, ${filters}`);
    });
    if (q.dp) {
      const dp = q.dp;
      const delta = dp.delta === null ? "default" : String(dp.delta);
      const declared = dp.budget === dp.partyBudget ? "" : `; this query's: ${dp.budget}`;
      field("dp", `ε ${dp.epsilon} per run, charged to every recipient; δ ${delta}`);
      field(
        "",
        `each party's ε total ${dp.partyBudget} (smallest budget declared${declared}): ${dp.runsPerBudget} runs`,
      );
      const groups =
        dp.groups === "public"
          ? `public: one row per declared value (${(dp.domain ?? []).map((d) => `${d.column} in ${list(d.values)}`).join("; ")})`
          : dp.groups === "private"
            ? "private: groups from the data, released past a noisy threshold"
            : "single: one row";
      field("", `groups ${groups}`);
      const bounds = [
        dp.maxRowsPerIdentity === undefined
          ? ""
          : `at most ${dp.maxRowsPerIdentity} rows per person over the whole query`,
        dp.clamp ? `sums clamped to [${glued(`${dp.clamp.lower},`, String(dp.clamp.upper))}]` : "",
      ].filter((s) => s !== "");
      if (bounds.length) field("", bounds.join("; "));
    }
    if (q.differencingGuard !== null) {
      field(
        "guard",
        q.differencingGuard
          ? "differencing guard on: a row whose people differ from a row this query released before " +
              "by fewer than k is suppressed"
          : "differencing guard OFF",
      );
    }
    field("runs", q.maxRuns === null ? "no limit (no maxRuns)" : `at most ${q.maxRuns}`);
    if (q.rule === "custom" || q.status === "refused") {
      q.sql.split("\n").forEach((line, n) => {
        const lead = line.match(/^ */)![0];
        const first = `  ${(n === 0 ? "sql" : "").padEnd(LABEL)}${lead}`;
        out.push(...wrap(first, line.trim(), `${pad}${lead}    `, width));
      });
    }
    for (const [n, w] of q.warnings.entries()) warn(w, `  ${(n === 0 ? "warnings" : "").padEnd(LABEL)}`);
  });

  const across = review.warnings.filter((w) => (w.queries?.length ?? 0) > 1);
  if (across.length > 0) {
    out.push("", "ACROSS QUERIES");
    for (const w of across) warn(w, "  ");
  }
  out.push(
    "",
    `SUMMARY  ${review.queries.length} queries: ${review.queries.length - refused.length} admitted, ` +
      `${refused.length} refused; ${review.warnings.length} warnings`,
  );
  for (const q of refused) out.push(...wrap(`  REFUSED ${q.id}: `, q.refusal ?? "", "    ", width));
  out.push(
    ...wrap(
      "  ",
      review.admitted
        ? "The enclave checks every query again when it loads the contract (types, planning, the custom rule's shape)."
        : "The enclave will not load this contract while a query is refused.",
      "  ",
      width,
    ),
  );
  return `${out.join("\n")}\n`;
}
