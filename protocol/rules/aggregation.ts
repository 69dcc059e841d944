/**
 * The aggregation rule: a positive grammar over DuckDB's parse tree. A query is admitted only if
 * every node is one the grammar names, in a place where the grammar allows it:
 *
 *   SELECT <dimension expr> AS name, ..., <aggregate expr> AS name, ...
 *   FROM t0 [INNER|LEFT JOIN t1 ON <equality of identity/join columns> [AND <dimension predicate>]]...
 *   [WHERE <predicate on dimensions; $parameters only compared with a dimension column>]
 *   [GROUP BY <dimension expr>, ...]
 *   [HAVING <aggregate expr> <comparison> <number>]
 *
 * Column references are always `alias.column`, resolved here against the contract's datasets and
 * the column roles their owners declared (identity, join, dimension, measure). Identity columns are
 * tainted: they may appear only in join equalities and in count(DISTINCT ...). Parameters are
 * tainted: only compared with a dimension column in WHERE. Measures appear only as the single
 * column argument of an aggregate their owner allowed. The compiled form names every table, so
 * the enclave re-emits the statement with its own aliases and one distinct count per table.
 */
import type {
  ApprovedQuery,
  Column,
  ColumnType,
  Dataset,
  MeasureAggregate,
  ParameterType,
} from "../contract/types.js";
import { QueryCheckError } from "./errors.js";
import { AGGREGATE_COMBINERS, CAST_TYPES, DIMENSION_FUNCTIONS } from "./functions.js";
import { printExpression } from "./print.js";
import { type AstNode, conjuncts, HIDDEN_PREFIX, isNode, lower, shape, walk } from "./tree.js";

export type ColumnRole = "identity" | "join" | "dimension" | "measure";

export interface TableRef {
  /** Position in FROM: the enclave's alias and hidden count are numbered by it. */
  index: number;
  /** The alias the contract's SQL uses. */
  alias: string;
  dataset: Dataset;
}

export interface ColumnUse {
  table: TableRef;
  column: Column;
  roles: ColumnRole[];
}

export interface AggregateUse {
  /** "count" is count(*) or count(column); "count-distinct" is count(DISTINCT identity). */
  fn: MeasureAggregate | "count-distinct";
  column?: ColumnUse;
}

export interface OutputColumnPlan {
  name: string;
  kind: "dimension" | "aggregate";
  /** The expression as the contract's SQL spells it. */
  text: string;
  columns: ColumnUse[];
  aggregates: AggregateUse[];
}

export interface JoinPlan {
  table: TableRef;
  type: "INNER" | "LEFT";
  keys: [ColumnUse, ColumnUse][];
  text: string;
}

export interface ParameterUse {
  name: string;
  type: ParameterType;
  /** The dimension column the parameter is compared with. */
  column: ColumnUse;
}

export interface AggregationPlan {
  tables: TableRef[];
  joins: JoinPlan[];
  outputs: OutputColumnPlan[];
  where?: string;
  groupBy: string[];
  having?: string;
  parameters: ParameterUse[];
  /** Every column read, with where it is read. */
  columns: ColumnUse[];
  /** Things a reviewer should weigh: min/max/median on a measure release one person's value. */
  warnings: string[];
}

/** Top-level SELECT keys, with what each may hold. Anything else is refused. */
const SELECT_KEYS = new Set([
  "type",
  "modifiers",
  "cte_map",
  "select_list",
  "from_table",
  "where_clause",
  "group_expressions",
  "group_sets",
  "aggregate_handling",
  "having",
  "sample",
  "qualify",
]);
const COMPARISON_TYPES = new Set([
  "COMPARE_EQUAL",
  "COMPARE_NOTEQUAL",
  "COMPARE_LESSTHAN",
  "COMPARE_GREATERTHAN",
  "COMPARE_LESSTHANOREQUALTO",
  "COMPARE_GREATERTHANOREQUALTO",
  "COMPARE_DISTINCT_FROM",
  "COMPARE_NOT_DISTINCT_FROM",
]);
/** Aggregates by parse-tree name, and the measure aggregate each one is. */
const AGGREGATES: Record<string, MeasureAggregate> = {
  count_star: "count",
  count: "count",
  sum: "sum",
  avg: "avg",
  min: "min",
  max: "max",
  median: "median",
};

/** The aggregate calls the aggregation rule admits, by parse-tree name. */
export const AGGREGATE_CALLS: ReadonlySet<string> = new Set(Object.keys(AGGREGATES));

/** Parameter types and the column types a parameter of that type may be compared with. */
const COMPARABLE: Record<ParameterType, ColumnType[]> = {
  VARCHAR: ["VARCHAR"],
  BIGINT: ["BIGINT", "INTEGER", "DOUBLE"],
  DOUBLE: ["BIGINT", "INTEGER", "DOUBLE"],
  BOOLEAN: ["BOOLEAN"],
  DATE: ["DATE", "TIMESTAMP"],
  TIMESTAMP: ["DATE", "TIMESTAMP"],
};

type Refuse = (reason: string, node?: unknown) => never;

/** Column types that compare without a cast that could fail. */
const TYPE_FAMILY: Record<ColumnType, string> = {
  VARCHAR: "text",
  BIGINT: "number",
  INTEGER: "number",
  DOUBLE: "number",
  BOOLEAN: "boolean",
  DATE: "time",
  TIMESTAMP: "time",
};

/** Expression classes outside the grammar everywhere, with the reason a reviewer reads. */
const NEVER: Record<string, string> = {
  WINDOW: "window functions are not allowed",
  SUBQUERY: "subqueries are not allowed under the aggregation rule (the custom rule admits them, with noise)",
  STAR: "* is not allowed: list the outputs",
  POSITIONAL_REFERENCE: "positional references (#n) are not allowed",
  LAMBDA: "lambda functions are not allowed",
  COLLATE: "COLLATE is not allowed",
};

/** Where an expression stands decides what it may contain. */
type Place = "where" | "on" | "dimension" | "having";

/** The roles a dataset's owner gave `column` (the identity column is its own role). */
export function rolesOf(dataset: Dataset, column: string): ColumnRole[] {
  const a = dataset.analysis;
  const roles: ColumnRole[] = [];
  if (column === dataset.identityColumn) roles.push("identity");
  if (a.joinColumns.includes(column)) roles.push("join");
  if (a.dimensions.includes(column)) roles.push("dimension");
  if (a.measures.some((m) => m.column === column)) roles.push("measure");
  return roles;
}

/** A list field as is: a non-node element stays, so the grammar refuses it rather than skips it. */
function list(node: AstNode, key: string): AstNode[] {
  const v = node[key];
  return Array.isArray(v) ? (v as AstNode[]) : [];
}

function empty(v: unknown): boolean {
  return v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
}

class Compiler {
  readonly tables: TableRef[] = [];
  readonly joins: JoinPlan[] = [];
  readonly columns: ColumnUse[] = [];
  readonly parameters: ParameterUse[] = [];
  readonly warnings: string[] = [];
  readonly #byId: Map<string, Dataset>;
  readonly #columnNames: Set<string>;

  constructor(
    readonly query: ApprovedQuery,
    datasets: Dataset[],
    readonly refuse: Refuse,
  ) {
    this.#byId = new Map(datasets.map((d) => [d.id.toLowerCase(), d]));
    this.#columnNames = new Set(datasets.flatMap((d) => d.columns.map((c) => c.name.toLowerCase())));
  }

  /** FROM: dataset tables joined left-deep by INNER or LEFT joins on key equalities. */
  from(ref: unknown): void {
    if (!isNode(ref)) this.refuse("needs a FROM clause over the contract's datasets");
    if (ref.type === "BASE_TABLE") {
      if (this.tables.length > 0)
        this.refuse("tables are joined with JOIN ... ON, not listed with commas", ref);
      this.table(ref);
      return;
    }
    if (ref.type !== "JOIN")
      this.refuse("FROM may only join dataset tables (no subquery, function or VALUES)");
    if (ref.ref_type === "CROSS")
      this.refuse("comma and CROSS joins are not allowed (INNER or LEFT JOIN ... ON)");
    if (ref.ref_type !== "REGULAR")
      this.refuse(`${lower(ref.ref_type)} joins are not allowed (INNER or LEFT JOIN ... ON)`);
    if (ref.join_type !== "INNER" && ref.join_type !== "LEFT") {
      this.refuse(`${lower(ref.join_type)} joins are not allowed (INNER or LEFT JOIN ... ON)`);
    }
    if (!empty(ref.using_columns)) this.refuse("JOIN ... USING is not allowed: name the key columns in ON");
    if (!empty(ref.alias) || !empty(ref.sample)) this.refuse("a join may not be aliased or sampled");
    if (ref.delim_flipped || !empty(ref.duplicate_eliminated_columns)) this.refuse("unsupported join form");
    this.from(ref.left);
    if (!isNode(ref.right) || ref.right.type !== "BASE_TABLE") {
      this.refuse("the right side of a join must be a dataset table");
    }
    const table = this.table(ref.right);
    const keys: [ColumnUse, ColumnUse][] = [];
    const parts = conjuncts(ref.condition);
    for (const c of parts) {
      const key = this.joinKey(c, table);
      if (key) keys.push(key);
      else this.predicate(c, "on");
    }
    if (keys.length === 0) {
      this.refuse(
        `the join of ${table.alias} needs an equality of identity or join columns with an earlier table`,
        ref.condition,
      );
    }
    this.joins.push({ table, type: ref.join_type, keys, text: printExpression(ref.condition) });
  }

  table(ref: AstNode): TableRef {
    if (!empty(ref.schema_name) || !empty(ref.catalog_name) || !empty(ref.at_clause)) {
      this.refuse("qualified or time-travel table references are not allowed");
    }
    if (!empty(ref.sample)) this.refuse("TABLESAMPLE is not allowed");
    const dataset = this.#byId.get(lower(ref.table_name));
    if (!dataset) this.refuse(`unknown table ${String(ref.table_name)}`);
    if (!empty(ref.column_name_alias)) {
      this.refuse(`a column list on ${dataset.id} would rename its columns: refer to them by their names`);
    }
    const alias = lower(empty(ref.alias) ? ref.table_name : ref.alias);
    if (this.#columnNames.has(alias)) this.refuse(`table alias ${alias} is also a column name`);
    if (this.tables.some((t) => t.alias === alias)) this.refuse(`table alias ${alias} is used twice`);
    const table: TableRef = { index: this.tables.length, alias, dataset };
    this.tables.push(table);
    return table;
  }

  /** `a.k = b.k` with both identity or join columns, one of them the newly joined table's. */
  joinKey(node: unknown, joined: TableRef): [ColumnUse, ColumnUse] | undefined {
    if (!isNode(node) || node.class !== "COMPARISON" || node.type !== "COMPARE_EQUAL") return undefined;
    if (!isNode(node.left) || !isNode(node.right)) return undefined;
    if (node.left.class !== "COLUMN_REF" || node.right.class !== "COLUMN_REF") return undefined;
    const a = this.column(node.left);
    const b = this.column(node.right);
    const keyed = (c: ColumnUse) => c.roles.includes("identity") || c.roles.includes("join");
    if (!keyed(a) || !keyed(b)) return undefined;
    if (a.table === b.table || (a.table !== joined && b.table !== joined)) {
      this.refuse("a join equality must compare the joined table with an earlier one", node);
    }
    // An implicit cast between key types could fail on one row's value.
    if (a.column.type !== b.column.type) {
      this.refuse(`join keys of different types (${a.column.type}, ${b.column.type})`, node);
    }
    return [a, b];
  }

  /** `alias.column`, resolved to a declared column of a FROM table, recorded as read. */
  column(node: AstNode): ColumnUse {
    const names = Array.isArray(node.column_names) ? node.column_names.map(String) : [];
    if (names.length !== 2) {
      this.refuse(
        `column ${names.join(".")} must be written as alias.column with a FROM table's alias`,
        node,
      );
    }
    const table = this.tables.find((t) => t.alias === lower(names[0]));
    if (!table) this.refuse(`${names[0]} is not a table of this query's FROM`, node);
    const column = table.dataset.columns.find((c) => lower(c.name) === lower(names[1]));
    if (!column) this.refuse(`${names[1]} is not a column of ${table.dataset.id}`, node);
    const roles = rolesOf(table.dataset, column.name);
    if (roles.length === 0) {
      this.refuse(
        `column ${column.name} of ${table.dataset.id} has no analysis role (not a dimension, join column or measure)`,
        node,
      );
    }
    const use = { table, column, roles };
    this.columns.push(use);
    return use;
  }

  /** A value computed from dimension columns and constants of one row. */
  dimension(node: unknown, place: Place): void {
    if (!isNode(node)) this.refuse("malformed expression");
    this.never(node);
    switch (node.class) {
      case "CONSTANT":
        return;
      case "COLUMN_REF": {
        const use = this.column(node);
        if (use.roles.includes("dimension")) return;
        if (use.roles.includes("identity")) {
          this.refuse(
            `identity column ${use.table.alias}.${use.column.name} may appear only in join equalities and count(DISTINCT ...)`,
            node,
          );
        }
        if (use.roles.includes("measure")) {
          this.refuse(
            `measure ${use.table.alias}.${use.column.name} may appear only inside an allowed aggregate`,
            node,
          );
        }
        this.refuse(
          `join column ${use.table.alias}.${use.column.name} may appear only in join equalities`,
          node,
        );
        break;
      }
      case "CAST":
        if (!CAST_TYPES.has(String(isNode(node.cast_type) ? node.cast_type.id : ""))) {
          this.refuse("cast to a type other than a scalar", node);
        }
        this.dimension(node.child, place);
        return;
      case "FUNCTION":
        this.scalarCall(node, DIMENSION_FUNCTIONS);
        for (const c of list(node, "children")) this.dimension(c, place);
        return;
      case "OPERATOR":
        if (node.type !== "OPERATOR_COALESCE") break;
        for (const c of list(node, "children")) this.dimension(c, place);
        return;
      case "CASE":
        for (const c of list(node, "case_checks")) {
          this.predicate(c.when_expr, place === "where" ? "dimension" : place);
          this.dimension(c.then_expr, place);
        }
        this.dimension(node.else_expr, place);
        return;
      case "PARAMETER":
        this.refuse(
          `parameter $${String(node.identifier)} may only be compared with a dimension column in WHERE`,
          node,
        );
    }
    this.refuse("expression not allowed by the aggregation rule", node);
  }

  never(node: AstNode): void {
    const reason = NEVER[String(node.class)];
    if (reason) this.refuse(reason, node);
  }

  /** A plain (non-aggregate) function call with no FILTER, ORDER BY or DISTINCT, from `allowed`. */
  scalarCall(node: AstNode, allowed: Set<string>): void {
    const name = lower(node.function_name);
    if (!empty(node.schema) || !empty(node.catalog))
      this.refuse("qualified function names are not allowed", node);
    if (!allowed.has(name)) this.refuse(`function ${name} is not on the aggregation rule's list`, node);
    const orders = isNode(node.order_bys) ? list(node.order_bys, "orders") : [];
    if (node.distinct || !empty(node.filter) || orders.length > 0 || node.export_state) {
      this.refuse(`function ${name} with DISTINCT, FILTER or ORDER BY`, node);
    }
  }

  /** A boolean condition. In WHERE a parameter may stand on one side of a comparison with a dimension column. */
  predicate(node: unknown, place: Place): void {
    if (!isNode(node)) this.refuse("malformed condition");
    this.never(node);
    const value = (n: unknown): void => {
      if (place === "having") this.aggregateExpr(n);
      else this.dimension(n, place);
    };
    switch (node.class) {
      case "CONJUNCTION":
        for (const c of list(node, "children")) this.predicate(c, place);
        return;
      case "CONSTANT":
        return;
      case "COMPARISON":
        if (!COMPARISON_TYPES.has(String(node.type))) break;
        if (place === "having") {
          // Only the number of people may decide whether a row appears: at the boundary every
          // one of them decides it, where a sum or a row count can hinge on one person.
          const uses = this.aggregateExpr(node.left);
          const people =
            isNode(node.left) && node.left.class === "FUNCTION" && uses[0]?.fn === "count-distinct";
          if (!people)
            this.refuse("HAVING may only compare count(DISTINCT <identity column>) with a number", node);
          this.number(node.right);
          return;
        }
        if (this.parameterComparison(node.left, node.right, place)) return;
        if (this.parameterComparison(node.right, node.left, place)) return;
        value(node.left);
        value(node.right);
        if (place === "on") this.sameFamily(node);
        return;
      case "BETWEEN":
        if (place === "having") break;
        for (const bound of [node.lower, node.upper]) {
          if (!this.parameterComparison(node.input, bound, place)) value(bound);
        }
        value(node.input);
        return;
      case "OPERATOR": {
        const [first, ...rest] = list(node, "children");
        if (node.type === "OPERATOR_NOT") {
          this.predicate(first, place);
          return;
        }
        if (place === "having") break;
        if (node.type === "OPERATOR_IS_NULL" || node.type === "OPERATOR_IS_NOT_NULL") {
          value(first);
          return;
        }
        if (node.type === "COMPARE_IN" || node.type === "COMPARE_NOT_IN") {
          for (const r of rest) if (!this.parameterComparison(first, r, place)) value(r);
          value(first);
          return;
        }
        break;
      }
      case "FUNCTION":
        if (place === "having") break;
        value(node);
        return;
    }
    this.refuse(
      `condition not allowed by the aggregation rule${place === "having" ? " in HAVING" : ""}`,
      node,
    );
  }

  /**
   * A comparison in ON runs outside TRY (so the engine can join on it): the columns it compares
   * must be of one type family, or the engine's implicit cast could fail on one row's value.
   */
  sameFamily(node: AstNode): void {
    const families = new Set<string>();
    walk([node.left, node.right], (n) => {
      if (n.class !== "COLUMN_REF") return;
      const names = (n.column_names as string[]).map(lower);
      const table = this.tables.find((t) => t.alias === names[0]);
      const column = table?.dataset.columns.find((c) => lower(c.name) === names[1]);
      if (column) families.add(TYPE_FAMILY[column.type]);
    });
    if (families.size > 1) this.refuse("a comparison in ON must compare columns of one type family", node);
  }

  /** `dimension column <op> $param` in WHERE (types must be comparable); false when `param` is no parameter. */
  parameterComparison(columnNode: unknown, param: unknown, place: Place): boolean {
    if (!isNode(param) || param.class !== "PARAMETER") return false;
    const name = String(param.identifier);
    if (place !== "where") this.refuse(`parameter $${name} may only be used in the top-level WHERE`, param);
    if (!isNode(columnNode) || columnNode.class !== "COLUMN_REF") {
      this.refuse(`parameter $${name} may only be compared with a dimension column`, param);
    }
    const use = this.column(columnNode);
    if (!use.roles.includes("dimension")) {
      this.refuse(
        `parameter $${name} may only be compared with a dimension column, not ${use.table.alias}.${use.column.name}`,
        param,
      );
    }
    const declared = this.query.parameters.find((p) => p.name === name);
    if (!declared) this.refuse(`parameter $${name} is not declared`, param);
    if (!COMPARABLE[declared.type].includes(use.column.type)) {
      this.refuse(
        `parameter $${name} (${declared.type}) is compared with ${use.column.name} (${use.column.type})`,
        param,
      );
    }
    this.parameters.push({ name, type: declared.type, column: use });
    return true;
  }

  number(node: unknown): void {
    const ok =
      isNode(node) && node.class === "CONSTANT" && isNode(node.value) && typeof node.value.value === "number";
    if (!ok) this.refuse("HAVING compares an aggregate with a number", node);
  }

  /** Aggregates of measures and constants, combined by arithmetic and rounding. */
  aggregateExpr(node: unknown, uses: AggregateUse[] = []): AggregateUse[] {
    if (!isNode(node)) this.refuse("malformed expression");
    this.never(node);
    if (node.class === "CONSTANT") return uses;
    if (node.class === "CAST") {
      // Arithmetic on aggregates runs in DOUBLE (it cannot overflow into an error); an integer
      // cast would bring back an overflow that one person's count could decide.
      if (!isNode(node.cast_type) || node.cast_type.id !== "DOUBLE") {
        this.refuse("casts of aggregates may only be to DOUBLE", node);
      }
      return this.aggregateExpr(node.child, uses);
    }
    if (node.class === "FUNCTION" && Object.hasOwn(AGGREGATES, lower(node.function_name))) {
      uses.push(this.aggregate(node));
      return uses;
    }
    if (node.class === "FUNCTION") {
      this.scalarCall(node, AGGREGATE_COMBINERS);
      for (const c of list(node, "children")) this.aggregateExpr(c, uses);
      return uses;
    }
    return this.refuse("an output must be a GROUP BY expression or built from allowed aggregates", node);
  }

  /** One aggregate call: count(*), count(DISTINCT identity), or an allowed aggregate of one measure column. */
  aggregate(node: AstNode): AggregateUse {
    const name = lower(node.function_name);
    const orders = isNode(node.order_bys) ? list(node.order_bys, "orders") : [];
    if (!empty(node.schema) || !empty(node.catalog))
      this.refuse("qualified function names are not allowed", node);
    if (!empty(node.filter)) this.refuse("aggregate FILTER clauses are not allowed", node);
    if (orders.length > 0 || node.export_state)
      this.refuse("ordered or exported aggregates are not allowed", node);
    const args = list(node, "children");
    if (name === "count_star") return { fn: "count" };
    if (args.length !== 1 || !isNode(args[0]) || args[0].class !== "COLUMN_REF") {
      this.refuse(`${name} takes exactly one column (alias.column) as its argument`, node);
    }
    const use = this.column(args[0]);
    const where = `${use.table.alias}.${use.column.name}`;
    if (use.roles.includes("identity")) {
      if (name !== "count") this.refuse(`identity column ${where} may only be counted`, node);
      return { fn: node.distinct ? "count-distinct" : "count", column: use };
    }
    if (node.distinct) this.refuse(`DISTINCT is allowed only in count(DISTINCT <identity column>)`, node);
    const fn = AGGREGATES[name]!;
    const measure = use.table.dataset.analysis.measures.find((m) => m.column === use.column.name);
    if (!measure) this.refuse(`${where} is not a measure: aggregates apply to measure columns`, node);
    if (!measure.aggregates.includes(fn)) {
      this.refuse(`${fn} of ${where} is not allowed by ${use.table.dataset.id}'s owner`, node);
    }
    if (fn === "min" || fn === "max" || fn === "median") {
      this.warnings.push(`${fn}(${where}) releases one person's value of each group`);
    }
    return { fn, column: use };
  }
}

/**
 * Integer constants beyond ±2^53 do not survive the parse tree's trip through JSON: the engine
 * would run another number than the contract says. Refused under both rules.
 */
export function refuseUnsafeIntegers(root: AstNode, refuse: (reason: string, node?: unknown) => never): void {
  walk(root, (n) => {
    const v = n.class === "CONSTANT" && isNode(n.value) ? n.value.value : undefined;
    if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) {
      refuse("integer constants beyond ±2^53 are not allowed (write them as DOUBLE or DECIMAL)");
    }
  });
}

/**
 * Compiles the parse tree of an approved query under the aggregation rule, or throws
 * QueryCheckError naming the query, the rule and the offending expression.
 */
export function compileAggregation(
  root: AstNode,
  query: ApprovedQuery,
  datasets: Dataset[],
): AggregationPlan {
  const refuse: Refuse = (reason, node) => {
    throw new QueryCheckError(query.id, node === undefined ? reason : `${reason}: ${printExpression(node)}`);
  };
  if (root.type !== "SELECT_NODE") refuse("must be one SELECT (no UNION, INTERSECT or EXCEPT)");
  for (const [key, v] of Object.entries(root)) {
    if (!SELECT_KEYS.has(key)) refuse(`unsupported clause ${key}`);
    if (key === "modifiers") {
      for (const m of v as AstNode[]) {
        if (m.type === "DISTINCT_MODIFIER") refuse("SELECT DISTINCT is not allowed");
        if (m.type === "ORDER_MODIFIER")
          refuse("ORDER BY is not allowed: the enclave releases rows in a canonical order");
        refuse("LIMIT and OFFSET are not allowed");
      }
    }
  }
  if (isNode(root.cte_map) && list(root.cte_map, "map").length > 0) {
    refuse("WITH (common table expressions) needs the custom rule");
  }
  if (!empty(root.qualify)) refuse("QUALIFY is not allowed");
  if (!empty(root.sample)) refuse("USING SAMPLE is not allowed");
  if (root.aggregate_handling !== "STANDARD_HANDLING")
    refuse("GROUP BY ALL is not allowed: list the GROUP BY expressions");

  refuseUnsafeIntegers(root, refuse);
  const c = new Compiler(query, datasets, refuse);
  c.from(root.from_table);
  if (!empty(root.where_clause)) c.predicate(root.where_clause, "where");

  const groupBy = list(root, "group_expressions");
  const groupSets = list(root, "group_sets");
  if (groupSets.length > 1) refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  for (const g of groupBy) {
    if (isNode(g) && g.class === "CONSTANT")
      refuse("GROUP BY by position is not allowed: name the expression", g);
    c.dimension(g, "dimension");
  }
  const groupShapes = new Set(groupBy.map(shape));

  const outputs: OutputColumnPlan[] = [];
  const names = new Set<string>();
  for (const item of list(root, "select_list")) {
    c.never(item);
    const name = String(item.alias ?? "");
    if (name === "") refuse("every output needs an alias (expression AS name)", item);
    if (names.has(name.toLowerCase())) refuse(`output name ${name} is used twice`);
    if (name.toLowerCase().startsWith(HIDDEN_PREFIX)) refuse(`output name ${name} uses the reserved prefix`);
    names.add(name.toLowerCase());
    const before = c.columns.length;
    if (groupShapes.has(shape(item))) {
      c.dimension(item, "dimension");
      outputs.push({
        name,
        kind: "dimension",
        text: printExpression(item),
        columns: c.columns.slice(before),
        aggregates: [],
      });
      continue;
    }
    const aggregates = c.aggregateExpr(item);
    if (aggregates.length === 0)
      refuse(`output ${name} is neither a GROUP BY expression nor an aggregate`, item);
    outputs.push({
      name,
      kind: "aggregate",
      text: printExpression(item),
      columns: c.columns.slice(before),
      aggregates,
    });
  }
  if (outputs.length === 0) refuse("no output columns");
  if (!empty(root.having)) c.predicate(root.having, "having");

  const used = new Set(c.parameters.map((p) => p.name));
  for (const p of query.parameters)
    if (!used.has(p.name)) refuse(`declares parameter ${p.name} but never uses it`);

  return {
    tables: c.tables,
    joins: c.joins,
    outputs,
    ...(empty(root.where_clause) ? {} : { where: printExpression(root.where_clause) }),
    groupBy: groupBy.map(printExpression),
    ...(empty(root.having) ? {} : { having: printExpression(root.having) }),
    parameters: c.parameters,
    columns: c.columns,
    warnings: [...new Set(c.warnings)],
  };
}
