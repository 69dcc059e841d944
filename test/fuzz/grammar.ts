/**
 * Generators for the aggregation grammar's property tests and fuzzer.
 *
 * `aggregationQuery`: random queries from the allowed grammar (docs/QUERY-RULES.md): dataset
 * tables joined on the identity (INNER or LEFT, with dimension predicates in ON), dimension
 * expressions selected and grouped, allowed aggregates of measures, WHERE predicates with
 * parameters compared with dimension columns, HAVING count(DISTINCT identity)-versus-number. Each comes with the
 * SQL that counts, independently of the enclave, the distinct identities of every table in each
 * group, and with parameter values drawn from the data (the target's rare values included).
 *
 * `riskyQuery`: such a query with one forbidden construct inserted (an identity, a measure as a
 * dimension, a one-value aggregate, a FILTER, a window, a subquery, a set operation, a table
 * function, an unbounded scalar, a nested cast, an invisible character...): it must be refused.
 */
import fc from "fast-check";
import type {
  ApprovedQuery,
  Contract,
  Dataset,
  Parameter,
  ParameterType,
} from "../../protocol/contract/types.js";
import { exposures, purchases } from "../../scripts/demo/usecases.js";
import { AGE_BANDS, CATEGORIES, CHANNELS, SEGMENTS, TARGET } from "../attacks/judge.js";

const P = purchases.id;
const E = exposures.id;

interface TableSpec {
  id: string;
  /** Dimension expressions over alias `$`. */
  dims: string[];
  /** Dimension predicates over alias `$` (no parameter). */
  preds: string[];
  /** VARCHAR dimension columns and values a parameter may take. */
  textParams: [string, string[]][];
  /** TIMESTAMP dimension columns. */
  timeParams: string[];
  /** Aggregates of this table's measures (and identity counts), over alias `$`. */
  aggregates: string[];
}

const PURCHASES: TableSpec = {
  id: P,
  dims: [
    "$.category",
    "upper($.category)",
    "left($.category, 3)",
    "date_trunc('week', $.purchase_ts)",
    "hour($.purchase_ts) // 6",
    "dayofweek($.purchase_ts)",
    "CASE WHEN $.category IN ('shoes', 'apparel') THEN 'wear' ELSE 'other' END",
    "year($.purchase_ts)",
  ],
  preds: [
    "$.category <> 'beauty'",
    "$.category IN ('shoes', 'apparel', 'yachts')",
    "$.purchase_ts >= TIMESTAMP '2024-04-05 00:00:00'",
    "$.category IS NOT NULL",
    "NOT ($.category = 'electronics')",
    "length($.category) > 4",
  ],
  textParams: [["category", [...CATEGORIES, TARGET.category, "watches", "none"]]],
  timeParams: ["purchase_ts"],
  aggregates: [
    "count(*)",
    "count(DISTINCT $.user_id)",
    "sum($.amount)",
    "avg($.amount)",
    "count($.amount)",
    "round(sum($.amount), 2)",
    "round(sum($.amount) / count(*), 1)",
  ],
};

const EXPOSURES: TableSpec = {
  id: E,
  dims: [
    "$.segment",
    "$.arm",
    "$.channel",
    "$.age_band",
    "$.campaign",
    "lower($.segment)",
    "date_trunc('day', $.exposure_ts)",
    "$.arm || '/' || $.channel",
  ],
  preds: [
    "$.campaign = 'spring24'",
    "$.arm = 'exposed'",
    "$.age_band <> '18-34'",
    "$.segment IN ('sports', 'news')",
    "$.exposure_ts < TIMESTAMP '2024-04-20 00:00:00'",
    "$.channel IS NOT NULL",
  ],
  textParams: [
    ["segment", [...SEGMENTS, TARGET.segment]],
    ["age_band", [...AGE_BANDS, "65+"]],
    ["channel", CHANNELS],
    ["arm", ["exposed", "control"]],
    ["campaign", ["spring24", "summer24"]],
  ],
  timeParams: ["exposure_ts"],
  aggregates: ["count(*)", "count(DISTINCT $.user_id)"],
};

const SPECS = { [P]: PURCHASES, [E]: EXPOSURES };
const ALIASES = ["t0", "t1", "t2"];
const TS_VALUES = [
  "2024-04-01 00:00:00",
  "2024-04-10 00:00:00",
  "2024-04-19 00:00:00",
  TARGET.purchaseTs,
  TARGET.exposureTs,
  "2024-04-30 00:00:00",
];

const at = (expr: string, alias: string) => expr.replaceAll("$.", `${alias}.`);

export interface GeneratedQuery {
  sql: string;
  parameters: Parameter[];
  params: Record<string, unknown>;
  /** Per table alias, in FROM order. */
  aliases: string[];
  /** Output names of the dimension (key) columns, first in the select list. */
  keys: string[];
  /** Counts distinct identities per table alias by group (keys first, then one count per alias). */
  countSql: string;
  /** The structure, for the risky fuzzer to insert into. */
  parts: Parts;
}

interface Parts {
  tables: { id: string; alias: string }[];
  from: string;
  dims: string[];
  aggs: string[];
  where: string[];
  having?: string;
}

function render(p: Parts, extraSelect: string[] = [], group?: (dims: string[]) => string): string {
  const select = [
    ...p.dims.map((d, i) => `${d} AS k${i}`),
    ...p.aggs.map((a, i) => `${a} AS v${i}`),
    ...extraSelect,
  ].join(", ");
  const where = p.where.length ? ` WHERE ${p.where.join(" AND ")}` : "";
  const grouping = group ? group(p.dims) : p.dims.length ? ` GROUP BY ${p.dims.join(", ")}` : "";
  const having = p.having ? ` HAVING ${p.having}` : "";
  return `SELECT ${select} FROM ${p.from}${where}${grouping}${having}`;
}

/** A random query of the allowed aggregation grammar. */
export const aggregationQuery: fc.Arbitrary<GeneratedQuery> = fc
  .record({
    tables: fc.array(fc.constantFrom(P, E), { minLength: 1, maxLength: 3 }),
    joinKinds: fc.array(fc.constantFrom("JOIN", "LEFT JOIN"), { minLength: 2, maxLength: 2 }),
    onPreds: fc.array(fc.option(fc.nat(), { nil: undefined }), { minLength: 2, maxLength: 2 }),
    dims: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 2 }),
    aggs: fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 3 }),
    wheres: fc.array(
      fc.record({
        table: fc.nat(),
        kind: fc.constantFrom("pred", "text", "time", "in"),
        pick: fc.nat(),
        value: fc.nat(),
        op: fc.constantFrom("=", "<>", ">=", "<"),
      }),
      { maxLength: 3 },
    ),
    having: fc.option(fc.tuple(fc.nat(), fc.constantFrom(">=", ">", "<"), fc.integer({ min: 0, max: 40 })), {
      nil: undefined,
    }),
  })
  .map((r) => {
    const tables = r.tables.map((id, i) => ({ id, alias: ALIASES[i]! }));
    let from = `${tables[0]!.id} ${tables[0]!.alias}`;
    tables.slice(1).forEach((t, j) => {
      const prev = tables[j]!;
      const onPred = r.onPreds[j];
      const spec = SPECS[t.id]!;
      const extra =
        onPred === undefined ? "" : ` AND ${at(spec.preds[onPred % spec.preds.length]!, t.alias)}`;
      from += ` ${r.joinKinds[j]} ${t.id} ${t.alias} ON ${t.alias}.user_id = ${prev.alias}.user_id${extra}`;
    });
    const tableOf = (n: number) => tables[n % tables.length]!;
    const dims = [
      ...new Set(
        r.dims.map(([ti, di]) => {
          const t = tableOf(ti);
          const spec = SPECS[t.id]!;
          return at(spec.dims[di % spec.dims.length]!, t.alias);
        }),
      ),
    ];
    const aggs = [
      ...new Set(
        r.aggs.map(([ti, ai]) => {
          const t = tableOf(ti);
          const spec = SPECS[t.id]!;
          return at(spec.aggregates[ai % spec.aggregates.length]!, t.alias);
        }),
      ),
    ];
    const parameters: Parameter[] = [];
    const params: Record<string, unknown> = {};
    const param = (type: ParameterType, value: unknown): string => {
      const name = `p${parameters.length}`;
      parameters.push({ name, type });
      params[name] = value;
      return `$${name}`;
    };
    const where: string[] = [];
    for (const w of r.wheres) {
      const t = tableOf(w.table);
      const spec = SPECS[t.id]!;
      if (w.kind === "pred") where.push(at(spec.preds[w.pick % spec.preds.length]!, t.alias));
      else if (w.kind === "time") {
        const col = spec.timeParams[w.pick % spec.timeParams.length]!;
        const op = w.op === "<>" ? ">=" : w.op;
        where.push(`${t.alias}.${col} ${op} ${param("TIMESTAMP", TS_VALUES[w.value % TS_VALUES.length])}`);
      } else {
        const [col, values] = spec.textParams[w.pick % spec.textParams.length]!;
        const v = (n: number) => values[n % values.length];
        if (w.kind === "in") {
          where.push(
            `${t.alias}.${col} IN (${param("VARCHAR", v(w.value))}, ${param("VARCHAR", v(w.value + 1))})`,
          );
        } else {
          const op = w.op === "=" || w.op === "<>" ? w.op : "=";
          // The parameter on either side of the comparison.
          where.push(
            w.value % 2
              ? `${param("VARCHAR", v(w.value))} ${op} ${t.alias}.${col}`
              : `${t.alias}.${col} ${op} ${param("VARCHAR", v(w.value))}`,
          );
        }
      }
    }
    let having: string | undefined;
    if (r.having) {
      const [ai, op, n] = r.having;
      const t = tableOf(ai);
      // Only the number of people may decide whether a row appears (docs/QUERY-RULES.md).
      having = `count(DISTINCT ${t.alias}.user_id) ${op} ${n}`;
    }
    const parts: Parts = { tables, from, dims, aggs, where, ...(having ? { having } : {}) };
    const keys = dims.map((_, i) => `k${i}`);
    const counts = tables.map((t) => `count(DISTINCT ${t.alias}.user_id) AS n_${t.alias}`);
    const countSql = render({ ...parts, aggs: [] }, counts).replace(/ HAVING .*$/, "");
    return {
      sql: render(parts),
      parameters,
      params,
      aliases: tables.map((t) => t.alias),
      keys,
      countSql,
      parts,
    };
  });

// ---------------------------------------------------------------------------------------------
// Forbidden constructs, inserted into otherwise valid queries

type Insert =
  | { place: "select"; expr: (a: string, t: string) => string; params?: Parameter[] }
  | { place: "dimension"; expr: (a: string, t: string) => string }
  | { place: "where"; expr: (a: string, t: string) => string; params?: Parameter[] }
  | { place: "having"; expr: (a: string, t: string) => string; params?: Parameter[] }
  | { place: "sql"; edit: (sql: string, a: string, t: string) => string }
  /** A GROUP BY clause made of the query's dimensions. */
  | { place: "group"; clause: (dims: string[]) => string }
  /** A join appended to FROM; `a0` is the first table's alias, `t` the joined dataset. */
  | { place: "join"; join: (a0: string, t0: string, t: string) => string; params?: Parameter[] }
  | { place: "text"; chars: string };

const who: Parameter[] = [{ name: "who", type: "VARCHAR" }];
/** A text dimension and the timestamp of a dataset. */
const text = (t: string) => (t === P ? "category" : "segment");
const time = (t: string) => (t === P ? "purchase_ts" : "exposure_ts");

/** Each a construct the aggregation rule forbids; `a` is a table alias, `t` its table. */
export const RISKY: Record<string, Insert> = {
  // The identity, the row, a position.
  "max(identity)": { place: "select", expr: (a) => `max(${a}.user_id)` },
  "identity as dimension": { place: "dimension", expr: (a) => `${a}.user_id` },
  "left(identity)": { place: "dimension", expr: (a) => `left(${a}.user_id, 2)` },
  "hash(identity)": { place: "dimension", expr: (a) => `hash(${a}.user_id) % 2` },
  "md5(identity)": { place: "dimension", expr: (a) => `md5(${a}.user_id)` },
  "arg_max(row)": { place: "select", expr: (a) => `arg_max(${a}, ${a}.user_id)` },
  "max(row::VARCHAR)": { place: "select", expr: (a) => `max(${a}::VARCHAR)` },
  "struct_extract(row)": { place: "select", expr: (a) => `max(struct_extract(${a}, 'user_id'))` },
  "(row).user_id": { place: "select", expr: (a) => `max((${a}).user_id)` },
  "#1": { place: "select", expr: () => "max(#1)" },
  "row as dimension": { place: "dimension", expr: (a) => `${a}` },
  "to_json(row)": { place: "select", expr: (a) => `max(to_json(${a}))` },
  "column list rename": {
    place: "sql",
    edit: (sql, a, t) =>
      sql.replace(
        new RegExp(`\\b${t} ${a}\\b`),
        t === P
          ? `${t} AS ${a}(category, purchase_ts, amount, user_id)`
          : `${t} AS ${a}(segment, a, b, c, d, user_id, e)`,
      ),
  },
  "identity count FILTER": {
    place: "select",
    expr: (a) => `count(*) FILTER (WHERE substr(${a}.user_id, 1, 1) < '8')`,
  },
  "count_if(identity)": { place: "select", expr: (a) => `count_if(${a}.user_id LIKE 'a%')` },
  "sum(CASE identity)": {
    place: "select",
    expr: (a) => `sum(CASE WHEN ${a}.user_id < '8' THEN 1 ELSE 0 END)`,
  },
  // Aggregates returning one value or all of them.
  "first(... ORDER BY)": { place: "select", expr: (a) => `first(${a}.user_id ORDER BY ${a}.user_id)` },
  "any_value(dim)": {
    place: "select",
    expr: (a, t) => `any_value(${a}.${t === P ? "category" : "segment"})`,
  },
  "mode FILTER": {
    place: "select",
    expr: (a, t) => `mode(${a}.${t === P ? "category" : "segment"}) FILTER (WHERE true)`,
  },
  "bit_or(CASE)": {
    place: "select",
    expr: (a, t) => `bit_or(CASE WHEN ${a}.${t === P ? "category" : "segment"} = 'x' THEN 1 ELSE 0 END)`,
  },
  "list()": { place: "select", expr: (a) => `list(${a}.user_id)` },
  "string_agg()": {
    place: "select",
    expr: (a, t) => `string_agg(${a}.${t === P ? "category" : "segment"}, ',')`,
  },
  "histogram()": {
    place: "select",
    expr: (a, t) => `histogram(${a}.${t === P ? "purchase_ts" : "exposure_ts"})`,
  },
  "max(dimension)": {
    place: "select",
    expr: (a, t) => `max(${a}.${t === P ? "purchase_ts" : "exposure_ts"})`,
  },
  "min(measure) not allowed": {
    place: "select",
    expr: (a, t) => (t === P ? `min(${a}.amount)` : `min(${a}.user_id)`),
  },
  "median(measure) not allowed": {
    place: "select",
    expr: (a, t) => (t === P ? `median(${a}.amount)` : `median(${a}.exposure_ts)`),
  },
  reservoir_quantile: {
    place: "select",
    expr: (a, t) => `reservoir_quantile(${a}.${t === P ? "amount" : "exposure_ts"}, 1.0)`,
  },
  "quantile_disc list": {
    place: "select",
    expr: (a, t) => `quantile_disc(${a}.${t === P ? "amount" : "exposure_ts"}, [0.0, 1.0])`,
  },
  max_by: { place: "select", expr: (a) => `max_by(${a}.user_id, ${a}.user_id)` },
  "sum - sum FILTER": {
    place: "select",
    expr: (a) => `count(*) - count(*) FILTER (WHERE ${a}.user_id <> 'x')`,
  },
  "sum(DISTINCT)": {
    place: "select",
    expr: (a, t) => (t === P ? `sum(DISTINCT ${a}.amount)` : `count(DISTINCT ${a}.segment)`),
  },
  "unnest(list)": { place: "select", expr: (a) => `unnest(list(${a}.user_id))` },
  window: { place: "select", expr: () => "count(*) OVER ()" },
  "scalar subquery": { place: "select", expr: (_, t) => `(SELECT count(*) FROM ${t} x)` },
  "parameter in select": { place: "select", expr: () => "max($who)", params: who },
  // Where k does not look.
  "identity = $who": { place: "where", expr: (a) => `${a}.user_id = $who`, params: who },
  "identity literal": { place: "where", expr: (a) => `${a}.user_id = '${TARGET.id}'` },
  "identity range": { place: "where", expr: (a) => `${a}.user_id < '8'` },
  "measure in WHERE": {
    place: "where",
    expr: (a, t) => (t === P ? `${a}.amount > 1000` : `${a}.user_id > '0'`),
  },
  "EXISTS subquery": {
    place: "where",
    expr: (_, t) => `EXISTS (SELECT 1 FROM ${t} x WHERE x.user_id = $who)`,
    params: who,
  },
  "IN subquery": { place: "where", expr: (a, t) => `${a}.user_id IN (SELECT x.user_id FROM ${t} x)` },
  "parameter in expression": {
    place: "where",
    expr: (a, t) => `lower(${a}.${t === P ? "category" : "segment"}) = $who`,
    params: who,
  },
  "parameter vs parameter": { place: "where", expr: () => "$who = $who", params: who },
  "contains(identity)": { place: "where", expr: (a) => `contains(${a}.user_id, 'ab')` },
  "regexp on identity": { place: "where", expr: (a) => `regexp_matches(${a}.user_id, '^a')` },
  "HAVING bool_or": { place: "having", expr: (a) => `bool_or(${a}.user_id = $who)`, params: who },
  "HAVING parameter": { place: "having", expr: () => "count(*) > $who", params: who },
  "HAVING non-aggregate": { place: "having", expr: (a) => `${a}.user_id > 'a'` },
  // Dimensions with unbounded output or nested types.
  lpad: { place: "dimension", expr: (a, t) => `lpad(${a}.${t === P ? "category" : "segment"}, 10000, 'x')` },
  repeat: { place: "dimension", expr: (a, t) => `repeat(${a}.${t === P ? "category" : "segment"}, 1000)` },
  printf: { place: "dimension", expr: (a, t) => `printf('%s', ${a}.${t === P ? "category" : "segment"})` },
  string_split: {
    place: "dimension",
    expr: (a, t) => `string_split(${a}.${t === P ? "category" : "segment"}, '')`,
  },
  regexp_replace: {
    place: "dimension",
    expr: (a, t) => `regexp_replace(${a}.${t === P ? "category" : "segment"}, '.', 'xx', 'g')`,
  },
  "cast to list": {
    place: "dimension",
    expr: (a, t) => `CAST([${a}.${t === P ? "category" : "segment"}] AS VARCHAR[])`,
  },
  "cast to JSON": {
    place: "dimension",
    expr: (a, t) => `CAST(${a}.${t === P ? "category" : "segment"} AS JSON)`,
  },
  "measure as dimension": {
    place: "dimension",
    expr: (a, t) => (t === P ? `round(${a}.amount)` : `${a}.user_id`),
  },
  "random()": { place: "dimension", expr: () => "random() < 0.5" },
  // Shapes.
  "ORDER BY LIMIT": { place: "sql", edit: (sql) => `${sql} ORDER BY 1 LIMIT 1` },
  LIMIT: { place: "sql", edit: (sql) => `${sql} LIMIT 1` },
  QUALIFY: { place: "sql", edit: (sql) => `${sql} QUALIFY row_number() OVER () = 1` },
  DISTINCT: { place: "sql", edit: (sql) => sql.replace(/^SELECT /, "SELECT DISTINCT ") },
  "GROUP BY ALL": { place: "group", clause: () => " GROUP BY ALL" },

  ROLLUP: {
    place: "group",
    clause: (dims) =>
      dims.length ? ` GROUP BY ROLLUP (${dims.join(", ")})` : " GROUP BY GROUPING SETS ((), ())",
  },

  "GROUPING SETS": { place: "group", clause: (dims) => ` GROUP BY GROUPING SETS ((${dims.join(", ")}), ())` },

  "UNION ALL": { place: "sql", edit: (sql) => `${sql} UNION ALL ${sql}` },
  EXCEPT: { place: "sql", edit: (sql) => `${sql} EXCEPT ${sql}` },
  CTE: { place: "sql", edit: (sql) => `WITH c AS (SELECT 1 AS one) ${sql}` },
  "FROM subquery": {
    place: "sql",
    edit: (sql, a, t) => sql.replace(new RegExp(`\\b${t} ${a}\\b`), `(SELECT * FROM ${t}) ${a}`),
  },
  "comma join": { place: "join", join: (_a0, _t0, t) => `, ${t} zz` },
  "CROSS JOIN": { place: "join", join: (_a0, _t0, t) => ` CROSS JOIN ${t} zz` },
  "NATURAL JOIN": { place: "join", join: (_a0, _t0, t) => ` NATURAL JOIN ${t} zz` },
  "POSITIONAL JOIN": { place: "join", join: (_a0, _t0, t) => ` POSITIONAL JOIN ${t} zz` },
  "ASOF JOIN": {
    place: "join",
    join: (a0, t0, t) =>
      ` ASOF JOIN ${t} zz ON zz.user_id = ${a0}.user_id AND zz.${time(t)} <= ${a0}.${time(t0)}`,
  },
  "JOIN USING": { place: "join", join: (_a0, _t0, t) => ` JOIN ${t} zz USING (user_id)` },
  "RIGHT JOIN": { place: "join", join: (a0, _t0, t) => ` RIGHT JOIN ${t} zz ON zz.user_id = ${a0}.user_id` },
  "FULL JOIN": { place: "join", join: (a0, _t0, t) => ` FULL JOIN ${t} zz ON zz.user_id = ${a0}.user_id` },
  "SEMI JOIN": { place: "join", join: (a0, _t0, t) => ` SEMI JOIN ${t} zz ON zz.user_id = ${a0}.user_id` },
  "ANTI JOIN": { place: "join", join: (a0, _t0, t) => ` ANTI JOIN ${t} zz ON zz.user_id = ${a0}.user_id` },
  "join on a dimension": {
    place: "join",
    join: (a0, t0, t) => ` JOIN ${t} zz ON zz.${text(t)} = ${a0}.${text(t0)}`,
  },
  "join on identity inequality": {
    place: "join",
    join: (a0, _t0, t) => ` JOIN ${t} zz ON zz.user_id < ${a0}.user_id`,
  },
  "join on identity OR": {
    place: "join",
    join: (a0, _t0, t) => ` JOIN ${t} zz ON zz.user_id = ${a0}.user_id OR zz.${text(t)} = 'x'`,
  },
  "join with a parameter in ON": {
    place: "join",
    join: (a0, _t0, t) => ` JOIN ${t} zz ON zz.user_id = ${a0}.user_id AND zz.${text(t)} = $who`,
    params: who,
  },
  LATERAL: {
    place: "join",
    join: (a0, _t0, t) => `, LATERAL (SELECT 1 AS one FROM ${t} x WHERE x.user_id = ${a0}.user_id) zz`,
  },
  "range()": { place: "join", join: () => " JOIN range(3) zz ON zz.range = 1" },
  "read_csv()": { place: "join", join: () => ", read_csv('/etc/passwd') zz" },
  TABLESAMPLE: {
    place: "sql",
    edit: (sql, a, t) => sql.replace(new RegExp(`\\b${t} ${a}\\b`), `${t} ${a} TABLESAMPLE 50%`),
  },
  "qualified table": {
    place: "sql",
    edit: (sql, a, t) => sql.replace(new RegExp(`\\b${t} ${a}\\b`), `main.${t} ${a}`),
  },
  "unqualified column": { place: "where", expr: (_a, t) => `${text(t)} = 'x'` },
  "SELECT *": { place: "sql", edit: (sql) => sql.replace(/^SELECT /, "SELECT *, ") },
  "second statement": { place: "sql", edit: (sql) => `${sql}; SELECT 1` },
  // Trojan Source.
  "bidi override": { place: "text", chars: "\u202E" },
  "bidi isolate": { place: "text", chars: "\u2067" },
  "zero-width space": { place: "text", chars: "\u200B" },
  "zero-width joiner": { place: "text", chars: "\u200D" },
  "byte-order mark": { place: "text", chars: "\uFEFF" },
};

export interface RiskyQuery {
  construct: string;
  sql: string;
  parameters: Parameter[];
}

/** A valid query with one forbidden construct inserted. */
export const riskyQuery: fc.Arbitrary<RiskyQuery> = fc
  .tuple(aggregationQuery, fc.constantFrom(...Object.keys(RISKY)), fc.nat(), fc.nat())
  .map(([g, construct, ti, pos]) => {
    const risk = RISKY[construct]!;
    const table = g.parts.tables[ti % g.parts.tables.length]!;
    const { alias: a, id: t } = table;
    const parameters = [...g.parameters];
    const declare = (ps: Parameter[] | undefined) => {
      for (const p of ps ?? []) if (!parameters.some((x) => x.name === p.name)) parameters.push(p);
    };
    let sql: string;
    switch (risk.place) {
      case "select":
        declare(risk.params);
        sql = render(g.parts, [`${risk.expr(a, t)} AS risky`]);
        break;
      case "dimension":
        sql = render({ ...g.parts, dims: [...g.parts.dims, risk.expr(a, t)] });
        break;
      case "where":
        declare(risk.params);
        sql = render({ ...g.parts, where: [...g.parts.where, risk.expr(a, t)] });
        break;
      case "having":
        declare(risk.params);
        sql = render({
          ...g.parts,
          having: g.parts.having ? `${g.parts.having} AND ${risk.expr(a, t)}` : risk.expr(a, t),
        });
        break;
      case "sql":
        sql = risk.edit(g.sql, a, t);
        break;
      case "group":
        sql = render(g.parts, [], risk.clause);
        break;
      case "join": {
        declare(risk.params);
        const first = g.parts.tables[0]!;
        sql = render({ ...g.parts, from: g.parts.from + risk.join(first.alias, first.id, t) });
        break;
      }
      case "text": {
        const i = pos % (g.sql.length + 1);
        sql = g.sql.slice(0, i) + risk.chars + g.sql.slice(i);
        break;
      }
    }
    return { construct, sql, parameters };
  });

/** A one-query contract around `query` (placeholder keys: validate it with real parties). */
export function contractOf(
  parties: Contract["parties"],
  query: Pick<ApprovedQuery, "sql" | "parameters">,
  allowedColumns: string[],
  k = 10,
): Contract {
  const datasets: Dataset[] = [purchases, exposures].map((d, i) => ({
    ...structuredClone(d),
    owner: parties[i]!.id,
  }));
  return {
    version: 1,
    id: "grammar-fuzz",
    parties,
    datasets,
    queries: [
      {
        id: "q",
        sql: query.sql,
        parameters: query.parameters,
        runners: [parties[0]!.id],
        recipients: [parties[0]!.id],
        policy: { kind: "aggregation", minDistinctIdentities: k, allowedColumns },
      },
    ],
  };
}
