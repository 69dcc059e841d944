/**
 * The attack corpus.
 *
 * QUERY_ATTACKS: queries a signed party could put in a contract to get one person's data out,
 * grouped by class, each judged by effect in judge.ts (refused, or admitted and then run on D,
 * D' and "changed" with the attacker's parameters; a LEAK fails the case). BENIGN: the demo's use
 * cases and variations that must be admitted and leak-free (the judge's negative controls).
 * REQUEST_ATTACKS: requests against a loaded end-to-end room (room.ts) with canary rows.
 */
import type { Dataset, DpPolicy, Parameter } from "../../protocol/contract/types.js";
import type { QueryBody } from "../../protocol/jose/messages.js";
import { audienceInsight, audienceOverlap, closedLoop, lastTouch } from "../../scripts/demo/usecases.js";
import { type AttackCase, CHANGED, TARGET } from "./judge.js";
import { CANARY, CANARY_PURCHASE_TS } from "./room.js";

// ---------------------------------------------------------------------------------------------
// Helpers

const P = "advertiser_purchases";
const E = "publisher_exposures";
const vc = (name: string): Parameter => ({ name, type: "VARCHAR" });
const tsp = (name: string): Parameter => ({ name, type: "TIMESTAMP" });
const dbl = (name: string): Parameter => ({ name, type: "DOUBLE" });
const big = (name: string): Parameter => ({ name, type: "BIGINT" });

type Extra = Partial<Omit<AttackCase, "name" | "cls" | "sql" | "expect">>;
const refused = (cls: string, name: string, sql: string, extra: Extra = {}): AttackCase => ({
  cls,
  name,
  sql,
  expect: "refused",
  ...extra,
});
const admitted = (cls: string, name: string, sql: string, extra: Extra = {}): AttackCase => ({
  cls,
  name,
  sql,
  expect: "admitted",
  ...extra,
});
const either = (cls: string, name: string, sql: string, extra: Extra = {}): AttackCase => ({
  cls,
  name,
  sql,
  expect: "either",
  ...extra,
});

/** The owners of both datasets allow more aggregates on the purchase amount. */
const allowAmount =
  (...aggregates: ("min" | "max" | "median")[]) =>
  (ds: Dataset[]): Dataset[] => {
    const p = ds.find((d) => d.id === P)!;
    const m = p.analysis.measures.find((x) => x.column === "amount")!;
    m.aggregates = [...new Set([...m.aggregates, ...aggregates])];
    return ds;
  };
/** The advertiser declares user_id-keyed tables joinable on category too (a join column). */
const categoryJoin = (ds: Dataset[]): Dataset[] => {
  const p = ds.find((d) => d.id === P)!;
  p.analysis.dimensions = p.analysis.dimensions.filter((c) => c !== "category");
  p.analysis.joinColumns = ["category"];
  return ds;
};

const who = { parameters: [vc("who")], runs: [{ who: TARGET.id }] };
const cat = { parameters: [vc("cat")], runs: [{ cat: TARGET.category }, { cat: "shoes" }] };
const seg = { parameters: [vc("seg")], runs: [{ seg: TARGET.segment }, { seg: "sports" }] };

// ---------------------------------------------------------------------------------------------
// 1. The identity through the row struct, a rename, or a position

const identityViaRow: AttackCase[] = [
  refused("identity-via-row", "arg_max of the row struct", `SELECT arg_max(p, p.amount) AS r FROM ${P} p`),
  refused("identity-via-row", "max of the row cast to text", `SELECT max(p::VARCHAR) AS r FROM ${P} p`),
  refused(
    "identity-via-row",
    "struct_extract of user_id from the row",
    `SELECT p.category AS c, max(struct_extract(p, 'user_id')) AS u FROM ${P} p GROUP BY p.category`,
  ),
  refused("identity-via-row", "(p).user_id field access", `SELECT max((p).user_id) AS u FROM ${P} p`),
  refused("identity-via-row", "positional column #1", `SELECT max(#1) AS u FROM ${P} p`),
  refused(
    "identity-via-row",
    "FROM p(uid, ts, user_id, ...) swaps amount and identity names",
    `SELECT p.category AS c, sum(p.user_id) AS s, count(DISTINCT p.uid) AS n FROM ${P} AS p(uid, ts, user_id, category) GROUP BY p.category`,
  ),
  refused(
    "identity-via-row",
    "FROM p(category, ...) groups by the identity under a dimension's name",
    `SELECT p.category AS c, count(*) AS n FROM ${P} AS p(category, purchase_ts, amount, cat) GROUP BY p.category`,
  ),
  refused(
    "identity-via-row",
    "FROM p(amount, ...) sums... the identity as a measure",
    `SELECT p.c AS c, count(p.amount) AS n FROM ${P} AS p(amount, t, a, c) GROUP BY p.c`,
  ),
  refused("identity-via-row", "max(p.user_id)", `SELECT max(p.user_id) AS u FROM ${P} p`),
  refused(
    "identity-via-row",
    "min(e.user_id) by segment",
    `SELECT e.segment AS s, min(e.user_id) AS u FROM ${E} e GROUP BY e.segment`,
  ),
  refused(
    "identity-via-row",
    "GROUP BY the identity, output only counts",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category, p.user_id`,
  ),
  refused(
    "identity-via-row",
    "identity grouped and output",
    `SELECT p.user_id AS u, count(*) AS n FROM ${P} p GROUP BY p.user_id`,
  ),
  refused(
    "identity-via-row",
    "max of the whole row",
    `SELECT p.category AS c, max(p) AS r FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "identity-via-row",
    "count(DISTINCT p) of the row struct",
    `SELECT count(DISTINCT p) AS n FROM ${P} p`,
  ),
  refused(
    "identity-via-row",
    "left(user_id, 8) as a dimension",
    `SELECT left(p.user_id, 8) AS pre, count(*) AS n FROM ${P} p GROUP BY left(p.user_id, 8)`,
  ),
  refused(
    "identity-via-row",
    "COLUMNS('user_id') star expression",
    `SELECT max(COLUMNS('user_id')) AS u FROM ${P} p`,
  ),
  refused("identity-via-row", "SELECT * under aggregation", `SELECT * FROM ${P}`),
  refused("identity-via-row", "p.* with EXCLUDE", `SELECT p.* EXCLUDE (amount) FROM ${P} p`),
  refused(
    "identity-via-row",
    "max of a struct literal around the identity",
    `SELECT max({'u': p.user_id}) AS u FROM ${P} p`,
  ),
  refused("identity-via-row", "max(row(user_id))", `SELECT max(row(p.user_id, p.amount)) AS u FROM ${P} p`),
  refused("identity-via-row", "unqualified user_id", `SELECT max(user_id) AS u FROM ${P}`),
  refused(
    "identity-via-row",
    "the join key output from the other table",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id GROUP BY e.segment, p.user_id`,
  ),
  refused("identity-via-row", "rowid pseudo-column", `SELECT count(*) AS n FROM ${P} p WHERE p.rowid = 1`),
];

// ---------------------------------------------------------------------------------------------
// 2. Bit by bit: counts whose filter reads the identity

const bitByBit: AttackCase[] = [
  refused(
    "bit-by-bit",
    "count(*) FILTER on the first hex digit of the identity",
    `SELECT count(*) FILTER (WHERE substr(p.user_id, 1, 1) < '8') AS b0 FROM ${P} p WHERE p.category = $cat`,
    cat,
  ),
  refused(
    "bit-by-bit",
    "count FILTER on bit j of the identity's hash",
    `SELECT count(*) FILTER (WHERE (hash(p.user_id) >> 3) & 1 = 1) AS b3 FROM ${P} p`,
  ),
  refused(
    "bit-by-bit",
    "sum(CASE WHEN identity LIKE 'a%')",
    `SELECT sum(CASE WHEN p.user_id LIKE 'a%' THEN 1 ELSE 0 END) AS b FROM ${P} p`,
  ),
  refused(
    "bit-by-bit",
    "count_if over an identity prefix",
    `SELECT count_if(starts_with(e.user_id, $pre)) AS n FROM ${E} e`,
    { parameters: [vc("pre")], runs: [{ pre: TARGET.id.slice(0, 2) }] },
  ),
  refused(
    "bit-by-bit",
    "count(DISTINCT identity) FILTER (bit j) with a parameter position",
    `SELECT count(DISTINCT e.user_id) FILTER (WHERE ascii(substr(e.user_id, 1, 1)) % 2 = 1) AS n FROM ${E} e WHERE e.segment = $seg`,
    seg,
  ),
  refused(
    "bit-by-bit",
    "identity-dependent dimension (hash parity)",
    `SELECT hash(p.user_id) % 2 AS bit, count(DISTINCT p.user_id) AS n FROM ${P} p GROUP BY hash(p.user_id) % 2`,
  ),
  refused(
    "bit-by-bit",
    "sum(amount) FILTER on the target's category",
    `SELECT sum(p.amount) FILTER (WHERE p.category = 'yachts') AS s FROM ${P} p`,
  ),
  refused(
    "bit-by-bit",
    "identity compared in a CASE dimension",
    `SELECT CASE WHEN e.user_id < '8' THEN 'lo' ELSE 'hi' END AS half, count(*) AS n FROM ${E} e GROUP BY CASE WHEN e.user_id < '8' THEN 'lo' ELSE 'hi' END`,
  ),
];

// ---------------------------------------------------------------------------------------------
// 3. Aggregates that return one value (one person's), or all of them

const oneValue: AttackCase[] = [
  refused(
    "one-value-aggregate",
    "max(amount) not allowed by the owner",
    `SELECT p.category AS c, max(p.amount) AS top FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "one-value-aggregate",
    "min(amount) not allowed by the owner",
    `SELECT min(p.amount) AS low FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "median(amount) not allowed by the owner",
    `SELECT median(p.amount) AS mid FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "first(amount ORDER BY amount DESC)",
    `SELECT p.category AS c, first(p.amount ORDER BY p.amount DESC) AS top FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "one-value-aggregate",
    "any_value(purchase_ts)",
    `SELECT any_value(p.purchase_ts) AS t FROM ${P} p WHERE p.category = $cat`,
    cat,
  ),
  refused(
    "one-value-aggregate",
    "mode(category) FILTER (WHERE amount > 50000)",
    `SELECT mode(p.category) FILTER (WHERE p.amount > 50000) AS c FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "bit_or over CASE on the amount",
    `SELECT bit_or(CASE WHEN p.amount > 90000 THEN 1 ELSE 0 END) AS b FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "bit_and over CASE on a dimension",
    `SELECT bit_and(CASE WHEN p.category = 'yachts' THEN 0 ELSE 1 END) AS b FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "sum(x) - sum(x) FILTER (...) isolates one purchase",
    `SELECT sum(p.amount) - sum(p.amount) FILTER (WHERE p.category <> 'yachts') AS s FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "reservoir_quantile(amount, 1.0)",
    `SELECT reservoir_quantile(p.amount, 1.0) AS q FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "quantile_disc(amount, list_value(0, 1))",
    `SELECT quantile_disc(p.amount, list_value(0.0, 1.0)) AS q FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "quantile_cont(amount, 1.0)",
    `SELECT quantile_cont(p.amount, 1.0) AS q FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "approx_quantile(amount, 0.999)",
    `SELECT approx_quantile(p.amount, 0.999) AS q FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "unnest(list(amount))",
    `SELECT p.category AS c, unnest(list(p.amount)) AS a FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "one-value-aggregate",
    "list(amount)",
    `SELECT p.category AS c, list(p.amount) AS a FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "one-value-aggregate",
    "array_agg(purchase_ts)",
    `SELECT array_agg(p.purchase_ts) AS a FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "string_agg(category)",
    `SELECT e.segment AS s, string_agg(e.campaign, ',') AS a FROM ${E} e GROUP BY e.segment`,
  ),
  refused("one-value-aggregate", "histogram(amount)", `SELECT histogram(p.amount) AS h FROM ${P} p`),
  refused(
    "one-value-aggregate",
    "arg_min(purchase_ts, amount)",
    `SELECT arg_min(p.purchase_ts, p.amount) AS t FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "max_by(category, amount)",
    `SELECT max_by(p.category, p.amount) AS c FROM ${P} p`,
  ),
  refused("one-value-aggregate", "top-n max(amount, 3)", `SELECT max(p.amount, 3) AS top FROM ${P} p`),
  refused("one-value-aggregate", "last(amount)", `SELECT last(p.amount) AS a FROM ${P} p`),
  refused("one-value-aggregate", "product(amount)", `SELECT product(p.amount) AS a FROM ${P} p`),
  refused(
    "one-value-aggregate",
    "max(purchase_ts) of a dimension",
    `SELECT max(p.purchase_ts) AS t FROM ${P} p WHERE p.category = $cat`,
    cat,
  ),
  refused(
    "one-value-aggregate",
    "count(category) of a dimension",
    `SELECT count(p.category) AS n FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "avg(amount) * count(*) - sum over a FILTER",
    `SELECT avg(p.amount) FILTER (WHERE p.amount > 1000) AS a FROM ${P} p`,
  ),
  refused("one-value-aggregate", "sum(DISTINCT amount)", `SELECT sum(DISTINCT p.amount) AS s FROM ${P} p`),
  refused(
    "one-value-aggregate",
    "sum(amount * 0 + amount) expression argument",
    `SELECT sum(p.amount * 1) AS s FROM ${P} p`,
  ),
  refused("one-value-aggregate", "stddev_pop(amount)", `SELECT stddev_pop(p.amount) AS s FROM ${P} p`),
  refused(
    "one-value-aggregate",
    "approx_top_k(category)",
    `SELECT approx_top_k(p.category, 5) AS t FROM ${P} p`,
  ),
  refused(
    "one-value-aggregate",
    "min of a dimension on the other table",
    `SELECT min(e.exposure_ts) AS t FROM ${E} e WHERE e.segment = $seg`,
    seg,
  ),
  refused(
    "one-value-aggregate",
    "nested aggregate max(sum(...))",
    `SELECT max(sum(p.amount)) AS m FROM ${P} p GROUP BY p.category`,
  ),
  {
    cls: "one-value-aggregate",
    name: "max(amount) where the owner allowed it: one person's value (owner-accepted risk)",
    sql: `SELECT count(DISTINCT p.user_id) AS buyers, max(p.amount) AS top FROM ${P} p`,
    datasets: allowAmount("max"),
    expect: "owner-risk",
  },
  {
    cls: "one-value-aggregate",
    name: "min/max/median allowed, grouped by category (shoes: the target's 55.50 is no extreme)",
    sql: `SELECT p.category AS c, min(p.amount) AS lo, median(p.amount) AS mid FROM ${P} p GROUP BY p.category`,
    datasets: allowAmount("min", "median"),
    expect: "either",
  },
];

// ---------------------------------------------------------------------------------------------
// 4. Parameters and identities where k does not look

const whereKDoesNotLook: AttackCase[] = [
  refused(
    "parameter-or-identity",
    "sum(CASE WHEN category = $cat THEN amount)",
    `SELECT sum(CASE WHEN p.category = $cat THEN p.amount ELSE 0 END) AS s FROM ${P} p`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "HAVING bool_or(user_id = $who)",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM ${E} e GROUP BY e.segment HAVING bool_or(e.user_id = $who)`,
    who,
  ),
  refused(
    "parameter-or-identity",
    "ORDER BY ... LIMIT 1",
    `SELECT p.category AS c, sum(p.amount) AS s FROM ${P} p GROUP BY p.category ORDER BY sum(p.amount) DESC LIMIT 1`,
  ),
  refused(
    "parameter-or-identity",
    "QUALIFY row_number() picks one group",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category QUALIFY row_number() OVER (ORDER BY count(*)) = 1`,
  ),
  refused(
    "parameter-or-identity",
    "EXISTS (SELECT 1 FROM purchases WHERE user_id = $who)",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE EXISTS (SELECT 1 FROM ${P} x WHERE x.user_id = $who) GROUP BY e.segment`,
    who,
  ),
  refused(
    "parameter-or-identity",
    "LEFT JOIN ... ON keys AND e.user_id = $who (suppression oracle)",
    `SELECT e.arm AS arm, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id AND e.user_id = $who GROUP BY e.arm`,
    who,
  ),
  refused(
    "parameter-or-identity",
    "LEFT JOIN ... ON keys AND p.category = $cat (parameter in ON)",
    `SELECT e.arm AS arm, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id AND p.category = $cat GROUP BY e.arm`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "IN-subquery over the other dataset",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.user_id IN (SELECT x.user_id FROM ${P} x WHERE x.category = $cat) GROUP BY e.segment`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "WHERE e.user_id = $who",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e WHERE e.user_id = $who GROUP BY e.segment`,
    who,
  ),
  refused(
    "parameter-or-identity",
    "identity compared with a literal",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e WHERE e.user_id = '${TARGET.id}' GROUP BY e.segment`,
  ),
  refused(
    "parameter-or-identity",
    "e.user_id < 'x' range split",
    `SELECT e.arm AS a, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.user_id < '8' GROUP BY e.arm`,
  ),
  refused(
    "parameter-or-identity",
    "identity range split by parameters",
    `SELECT count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.user_id BETWEEN $lo AND $hi`,
    { parameters: [vc("lo"), vc("hi")], runs: [{ lo: TARGET.id, hi: TARGET.id }] },
  ),
  refused(
    "parameter-or-identity",
    "dimension OR identity parameter",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.segment = $seg OR e.user_id = $who GROUP BY e.segment`,
    { parameters: [vc("seg"), vc("who")], runs: [{ seg: "sports", who: TARGET.id }] },
  ),
  refused(
    "parameter-or-identity",
    "measure compared with a parameter",
    `SELECT count(DISTINCT p.user_id) AS n FROM ${P} p WHERE p.amount > $x`,
    { parameters: [dbl("x")], runs: [{ x: 90000 }] },
  ),
  refused(
    "parameter-or-identity",
    "measure compared with a literal",
    `SELECT p.category AS c, count(DISTINCT p.user_id) AS n FROM ${P} p WHERE p.amount > 90000 GROUP BY p.category`,
  ),
  refused(
    "parameter-or-identity",
    "contains(identity, $fragment)",
    `SELECT count(*) AS n FROM ${E} e WHERE contains(e.user_id, $frag)`,
    { parameters: [vc("frag")], runs: [{ frag: TARGET.id.slice(0, 6) }] },
  ),
  refused(
    "parameter-or-identity",
    "parameter in the select list",
    `SELECT $cat AS c, count(*) AS n FROM ${P} p`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "parameter inside a dimension expression",
    `SELECT count(*) AS n FROM ${P} p WHERE lower(p.category) = $cat`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "parameter in HAVING",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category HAVING count(*) > $n`,
    { parameters: [big("n")], runs: [{ n: 0 }] },
  ),
  refused(
    "parameter-or-identity",
    "parameter compared with a parameter",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = $cat AND $cat = $cat2`,
    { parameters: [vc("cat"), vc("cat2")], runs: [{ cat: "yachts", cat2: "yachts" }] },
  ),
  refused(
    "parameter-or-identity",
    "scalar subquery selecting the target's amount",
    `SELECT (SELECT max(x.amount) FROM ${P} x WHERE x.category = $cat) AS a, count(*) AS n FROM ${P} p`,
    cat,
  ),
  refused(
    "parameter-or-identity",
    "identity IS NOT DISTINCT FROM $who in CASE",
    `SELECT sum(CASE WHEN p.user_id IS NOT DISTINCT FROM $who THEN p.amount END) AS s FROM ${P} p`,
    who,
  ),
  refused(
    "parameter-or-identity",
    "undeclared parameter",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = $cat`,
    { parameters: [], runs: [] },
  ),
  refused("parameter-or-identity", "declared parameter never used", `SELECT count(*) AS n FROM ${P} p`, {
    parameters: [vc("who")],
    runs: [],
  }),
  refused(
    "parameter-or-identity",
    "positional parameter ?",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = ?`,
  ),
  refused(
    "parameter-or-identity",
    "numbered parameter $1",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = $1`,
  ),
  refused(
    "parameter-or-identity",
    "parameter typed VARCHAR compared with a TIMESTAMP dimension",
    `SELECT count(*) AS n FROM ${P} p WHERE p.purchase_ts = $ts`,
    { parameters: [vc("ts")], runs: [{ ts: TARGET.purchaseTs }] },
  ),
  // Admitted: the parameter can only pick the group; k per table then decides.
  admitted(
    "parameter-or-identity",
    "WHERE category = $cat picks the target's one-person category: suppressed",
    `SELECT p.category AS c, count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS revenue FROM ${P} p WHERE p.category = $cat GROUP BY p.category`,
    cat,
  ),
  admitted(
    "parameter-or-identity",
    "WHERE purchase_ts = $ts picks the target's unique timestamp: suppressed",
    `SELECT count(DISTINCT p.user_id) AS buyers, avg(p.amount) AS mean FROM ${P} p WHERE p.purchase_ts = $ts`,
    { parameters: [tsp("ts")], runs: [{ ts: TARGET.purchaseTs }] },
  ),
  admitted(
    "parameter-or-identity",
    "purchase_ts BETWEEN $from AND $to around the target's purchase: suppressed",
    `SELECT count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS s FROM ${P} p WHERE p.purchase_ts BETWEEN $from AND $to`,
    {
      parameters: [tsp("from"), tsp("to")],
      runs: [
        { from: "2024-04-19 04:44:00", to: "2024-04-19 04:45:00" },
        { from: "2024-04-01 00:00:00", to: "2024-05-01 00:00:00" },
      ],
    },
  ),
  admitted(
    "parameter-or-identity",
    "category IN ($a, $b) with the target's category and a missing one: suppressed",
    `SELECT count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS s FROM ${P} p WHERE p.category IN ($a, $b)`,
    {
      parameters: [vc("a"), vc("b")],
      runs: [
        { a: "yachts", b: "nothing" },
        { a: "yachts", b: "watches" },
      ],
    },
  ),
  admitted(
    "parameter-or-identity",
    "segment = $seg with the target's unique segment: suppressed",
    `SELECT e.segment AS s, e.age_band AS a, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.segment = $seg GROUP BY e.segment, e.age_band`,
    seg,
  ),
  admitted(
    "parameter-or-identity",
    "category = $cat OR a common category (differencing, a known limit: fed by the whole group)",
    `SELECT count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS s FROM ${P} p WHERE p.category = $cat OR p.category = 'beauty'`,
    cat,
  ),
  admitted(
    "parameter-or-identity",
    "HAVING count(DISTINCT) >= 1 does not undo k",
    `SELECT e.age_band AS a, count(DISTINCT e.user_id) AS n FROM ${E} e GROUP BY e.age_band HAVING count(DISTINCT e.user_id) >= 1`,
  ),
  either(
    "parameter-or-identity",
    "HAVING count(*) >= 37: a few buyers with many joined rows decide the row (random-grammar counterexample)",
    `SELECT CASE WHEN t0.category IN ('shoes', 'apparel') THEN 'wear' ELSE 'other' END AS k0, date_trunc('week', t0.purchase_ts) AS k1, count(*) AS v0 FROM ${P} t0 JOIN ${E} t1 ON t1.user_id = t0.user_id WHERE t1.campaign = 'spring24' GROUP BY CASE WHEN t0.category IN ('shoes', 'apparel') THEN 'wear' ELSE 'other' END, date_trunc('week', t0.purchase_ts) HAVING count(*) >= 37`,
  ),
  either(
    "parameter-or-identity",
    "HAVING sum(amount) > threshold between the total without and with the target's outlier",
    `SELECT count(DISTINCT p.user_id) AS buyers FROM ${P} p WHERE p.category = $cat OR p.category = 'beauty' HAVING sum(p.amount) > 60000`,
    cat,
  ),
];

// ---------------------------------------------------------------------------------------------
// 5. Joins

const joins: AttackCase[] = [
  admitted(
    "joins",
    "LEFT JOIN where the purchases side of a group is the target alone (k per table)",
    `SELECT e.arm AS arm, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS revenue FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id AND p.category = 'yachts' GROUP BY e.arm`,
  ),
  admitted(
    "joins",
    "LEFT JOIN, WHERE on the purchases side picks the target's category",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id WHERE p.category = $cat GROUP BY e.segment`,
    cat,
  ),
  admitted(
    "joins",
    "INNER JOIN grouped by the exposures' rare 65+ band (5 people)",
    `SELECT e.age_band AS a, count(DISTINCT e.user_id) AS n, avg(p.amount) AS mean FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id GROUP BY e.age_band`,
  ),
  admitted(
    "joins",
    "self join: pairs of one person's categories",
    `SELECT a.category AS c1, b.category AS c2, count(DISTINCT a.user_id) AS n FROM ${P} a JOIN ${P} b ON b.user_id = a.user_id GROUP BY a.category, b.category`,
  ),
  admitted(
    "joins",
    "self join on exposures: later exposure's channel",
    `SELECT a.channel AS first, b.channel AS later, count(DISTINCT a.user_id) AS n FROM ${E} a JOIN ${E} b ON b.user_id = a.user_id AND b.exposure_ts > a.exposure_ts GROUP BY a.channel, b.channel`,
  ),
  admitted(
    "joins",
    "three-way join: purchases of exposed users by segment and category",
    `SELECT e.segment AS s, p.category AS c, count(DISTINCT p.user_id) AS n, sum(p.amount) AS rev FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id LEFT JOIN ${P} q ON q.user_id = p.user_id AND q.purchase_ts > p.purchase_ts GROUP BY e.segment, p.category`,
  ),
  refused("joins", "comma join", `SELECT count(*) AS n FROM ${E} e, ${P} p WHERE p.user_id = e.user_id`),
  refused("joins", "CROSS JOIN", `SELECT count(*) AS n FROM ${E} e CROSS JOIN ${P} p`),
  refused("joins", "NATURAL JOIN", `SELECT count(*) AS n FROM ${E} e NATURAL JOIN ${P} p`),
  refused(
    "joins",
    "ASOF JOIN",
    `SELECT e.channel AS c, count(*) AS n FROM ${P} p ASOF JOIN ${E} e ON e.user_id = p.user_id AND e.exposure_ts <= p.purchase_ts GROUP BY e.channel`,
  ),
  refused(
    "joins",
    "POSITIONAL JOIN pairs rows by position",
    `SELECT e.segment AS s, sum(p.amount) AS a FROM ${E} e POSITIONAL JOIN ${P} p GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "LATERAL subquery",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e, LATERAL (SELECT x.amount FROM ${P} x WHERE x.user_id = e.user_id) l GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "JOIN ... USING (user_id)",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e JOIN ${P} p USING (user_id) GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "RIGHT JOIN",
    `SELECT p.category AS c, count(*) AS n FROM ${E} e RIGHT JOIN ${P} p ON p.user_id = e.user_id GROUP BY p.category`,
  ),
  refused(
    "joins",
    "FULL OUTER JOIN",
    `SELECT count(*) AS n FROM ${E} e FULL JOIN ${P} p ON p.user_id = e.user_id`,
  ),
  refused(
    "joins",
    "SEMI JOIN",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e SEMI JOIN ${P} p ON p.user_id = e.user_id GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "ANTI JOIN",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e ANTI JOIN ${P} p ON p.user_id = e.user_id GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "join on a dimension (not a key): a cartesian product",
    `SELECT count(*) AS n FROM ${E} e JOIN ${P} p ON p.category = e.segment`,
  ),
  refused(
    "joins",
    "join on an identity inequality",
    `SELECT e.segment AS s, count(*) AS n FROM ${E} e JOIN ${P} p ON p.user_id < e.user_id GROUP BY e.segment`,
  ),
  refused(
    "joins",
    "join with OR in the condition",
    `SELECT count(*) AS n FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id OR p.category = 'yachts'`,
  ),
  refused(
    "joins",
    "join of a table with itself on the same alias's columns",
    `SELECT count(*) AS n FROM ${E} e JOIN ${P} p ON e.user_id = e.user_id`,
  ),
  refused(
    "joins",
    "join alias reused",
    `SELECT count(*) AS n FROM ${E} e JOIN ${P} e ON e.user_id = e.user_id`,
  ),
  refused(
    "joins",
    "table alias that shadows a column name",
    `SELECT count(*) AS n FROM ${E} category JOIN ${P} p ON p.user_id = category.user_id`,
  ),
  refused(
    "joins",
    "join column role used as a dimension",
    `SELECT p.category AS c, count(DISTINCT p.user_id) AS n FROM ${P} p JOIN ${P} q ON q.category = p.category GROUP BY p.category`,
    { datasets: categoryJoin },
  ),
  admitted(
    "joins",
    "join on a declared join column (category), counted per table",
    `SELECT count(DISTINCT p.user_id) AS a, count(DISTINCT q.user_id) AS b FROM ${P} p JOIN ${P} q ON q.category = p.category`,
    { datasets: categoryJoin },
  ),
];

// ---------------------------------------------------------------------------------------------
// 6. Grouping forms, windows, DISTINCT, set operations, CTEs and subqueries

const shapes: AttackCase[] = [
  refused("grouping", "GROUP BY ALL", `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY ALL`),
  refused("grouping", "GROUP BY position", `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY 1`),
  refused(
    "grouping",
    "GROUP BY output alias",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY c`,
  ),
  refused(
    "grouping",
    "ROLLUP subtotals",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY ROLLUP (p.category)`,
  ),
  refused(
    "grouping",
    "CUBE",
    `SELECT e.segment AS s, e.arm AS a, count(*) AS n FROM ${E} e GROUP BY CUBE (e.segment, e.arm)`,
  ),
  refused(
    "grouping",
    "GROUPING SETS",
    `SELECT e.segment AS s, e.age_band AS a, count(*) AS n FROM ${E} e GROUP BY GROUPING SETS ((e.segment), (e.age_band), ())`,
  ),
  refused(
    "grouping",
    "output that is not a GROUP BY expression",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p`,
  ),
  refused(
    "grouping",
    "output without an alias",
    `SELECT p.category, count(*) FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "window",
    "window over the groups",
    `SELECT p.category AS c, count(*) OVER () AS n FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "window",
    "window partitioned by identity",
    `SELECT max(p.amount) OVER (PARTITION BY p.user_id) AS m FROM ${P} p`,
  ),
  refused(
    "window",
    "lag of the amount",
    `SELECT lag(p.amount) OVER (ORDER BY p.purchase_ts) AS a FROM ${P} p`,
  ),
  refused(
    "window",
    "sum(count(*)) OVER ()",
    `SELECT p.category AS c, sum(count(*)) OVER () AS n FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "window",
    "named WINDOW",
    `SELECT p.category AS c, count(*) OVER w AS n FROM ${P} p GROUP BY p.category WINDOW w AS (ORDER BY p.category)`,
  ),
  either(
    "window",
    "unused WINDOW clause",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category WINDOW w AS (ORDER BY p.category)`,
  ),
  refused("distinct", "SELECT DISTINCT of dimensions", `SELECT DISTINCT p.category AS c FROM ${P} p`),
  refused(
    "distinct",
    "DISTINCT ON",
    `SELECT DISTINCT ON (p.category) p.category AS c, p.amount AS a FROM ${P} p`,
  ),
  refused("distinct", "count(DISTINCT amount)", `SELECT count(DISTINCT p.amount) AS n FROM ${P} p`),
  refused(
    "set-operation",
    "UNION ALL of two aggregates",
    `SELECT count(*) AS n FROM ${P} p UNION ALL SELECT count(*) AS n FROM ${E} e`,
  ),
  refused(
    "set-operation",
    "EXCEPT of a group with and without the target's category",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category EXCEPT SELECT p.category AS c, count(*) AS n FROM ${P} p WHERE p.category <> 'yachts' GROUP BY p.category`,
  ),
  refused(
    "set-operation",
    "INTERSECT",
    `SELECT e.segment AS s FROM ${E} e INTERSECT SELECT e.segment AS s FROM ${E} e`,
  ),
  refused(
    "set-operation",
    "UNION BY NAME",
    `SELECT count(*) AS n FROM ${P} p UNION BY NAME SELECT count(*) AS n FROM ${P} p`,
  ),
  refused(
    "cte-subquery",
    "CTE under aggregation",
    `WITH t AS (SELECT * FROM ${P}) SELECT t.category AS c, count(*) AS n FROM t GROUP BY t.category`,
  ),
  refused(
    "cte-subquery",
    "CTE that renames the identity to a dimension's name",
    `WITH t AS (SELECT user_id AS category, amount FROM ${P}) SELECT t.category AS c, count(*) AS n FROM t GROUP BY t.category`,
  ),
  refused(
    "cte-subquery",
    "CTE shadowing a dataset table",
    `WITH ${P} AS (SELECT * FROM ${E}) SELECT count(*) AS n FROM ${P} p`,
  ),
  refused(
    "cte-subquery",
    "subquery in FROM",
    `SELECT t.c AS c, count(*) AS n FROM (SELECT p.category AS c FROM ${P} p) t GROUP BY t.c`,
  ),
  refused(
    "cte-subquery",
    "subquery in FROM hiding the identity as a dimension",
    `SELECT t.c AS c, count(*) AS n FROM (SELECT p.user_id AS c FROM ${P} p) t GROUP BY t.c`,
  ),
  refused(
    "cte-subquery",
    "WHERE ... = (scalar subquery of the target's timestamp)",
    `SELECT count(*) AS n FROM ${P} p WHERE p.purchase_ts = (SELECT max(x.purchase_ts) FROM ${P} x)`,
  ),
  refused(
    "cte-subquery",
    "recursive CTE",
    `WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) AS n FROM ${P} p`,
  ),
  refused(
    "cte-subquery",
    "materialized CTE",
    `WITH t AS MATERIALIZED (SELECT 1 AS x) SELECT count(*) AS n FROM ${P} p`,
  ),
];

// ---------------------------------------------------------------------------------------------
// 7. Scalar functions with unbounded output, casts to nested types, JSON, hashes

const scalars: AttackCase[] = [
  refused(
    "unbounded-scalar",
    "lpad of a dimension to a huge width",
    `SELECT lpad(p.category, 100000, 'x') AS c, count(*) AS n FROM ${P} p GROUP BY lpad(p.category, 100000, 'x')`,
  ),
  refused(
    "unbounded-scalar",
    "repeat of a dimension",
    `SELECT repeat(e.segment, 100000) AS s, count(*) AS n FROM ${E} e GROUP BY repeat(e.segment, 100000)`,
  ),
  refused(
    "unbounded-scalar",
    "printf of a measure into a dimension",
    `SELECT printf('%s', e.segment) AS s, count(*) AS n FROM ${E} e GROUP BY printf('%s', e.segment)`,
  ),
  refused(
    "unbounded-scalar",
    "string_split into a list",
    `SELECT string_split(e.segment, '') AS s, count(*) AS n FROM ${E} e GROUP BY string_split(e.segment, '')`,
  ),
  refused(
    "unbounded-scalar",
    "regexp_replace",
    `SELECT regexp_replace(e.segment, '.', 'xxxxxxxx', 'g') AS s, count(*) AS n FROM ${E} e GROUP BY regexp_replace(e.segment, '.', 'xxxxxxxx', 'g')`,
  ),
  refused(
    "unbounded-scalar",
    "regexp_matches on the identity",
    `SELECT count(*) AS n FROM ${E} e WHERE regexp_matches(e.user_id, '^a')`,
  ),
  refused(
    "unbounded-scalar",
    "regexp_extract of a dimension",
    `SELECT regexp_extract(e.campaign, '[a-z]+') AS c, count(*) AS n FROM ${E} e GROUP BY regexp_extract(e.campaign, '[a-z]+')`,
  ),
  refused(
    "unbounded-scalar",
    "format()",
    `SELECT format('{}', e.segment) AS s, count(*) AS n FROM ${E} e GROUP BY format('{}', e.segment)`,
  ),
  refused(
    "unbounded-scalar",
    "replace()",
    `SELECT replace(e.segment, 's', repeat('s', 1000)) AS s, count(*) AS n FROM ${E} e GROUP BY replace(e.segment, 's', repeat('s', 1000))`,
  ),
  refused(
    "unbounded-scalar",
    "list_transform lambda",
    `SELECT list_transform([1, 2], x -> x + 1) AS l, count(*) AS n FROM ${E} e`,
  ),
  refused(
    "nested-cast",
    "cast a dimension to VARCHAR[]",
    `SELECT CAST([e.segment] AS VARCHAR[]) AS s, count(*) AS n FROM ${E} e GROUP BY CAST([e.segment] AS VARCHAR[])`,
  ),
  refused(
    "nested-cast",
    "cast the row to a struct",
    `SELECT count(*) AS n FROM ${P} p WHERE CAST(p AS STRUCT(u VARCHAR, t TIMESTAMP, a DOUBLE, c VARCHAR)).c = 'x'`,
  ),
  refused(
    "nested-cast",
    "cast a dimension to JSON",
    `SELECT CAST(e.segment AS JSON) AS s, count(*) AS n FROM ${E} e GROUP BY CAST(e.segment AS JSON)`,
  ),
  refused(
    "nested-cast",
    "cast to BLOB",
    `SELECT CAST(e.segment AS BLOB) AS s, count(*) AS n FROM ${E} e GROUP BY CAST(e.segment AS BLOB)`,
  ),
  refused(
    "nested-cast",
    "cast to MAP",
    `SELECT count(*) AS n FROM ${E} e WHERE CAST(MAP {'a': e.segment} AS MAP(VARCHAR, VARCHAR)) IS NOT NULL`,
  ),
  refused("json", "to_json of the row", `SELECT max(to_json(p)) AS j FROM ${P} p`),
  refused(
    "json",
    "json_object with the identity",
    `SELECT e.segment AS s, max(json_object('u', e.user_id)) AS j FROM ${E} e GROUP BY e.segment`,
  ),
  refused(
    "json",
    "json_extract of a dimension",
    `SELECT json_extract(e.segment, '$') AS s, count(*) AS n FROM ${E} e GROUP BY json_extract(e.segment, '$')`,
  ),
  refused("json", "row_to_json", `SELECT max(row_to_json(p)) AS j FROM ${P} p`),
  refused(
    "hash",
    "hash(user_id) as a dimension",
    `SELECT hash(p.user_id) AS h, count(*) AS n FROM ${P} p GROUP BY hash(p.user_id)`,
  ),
  refused(
    "hash",
    "md5(user_id) as a dimension",
    `SELECT md5(p.user_id) AS h, count(*) AS n FROM ${P} p GROUP BY md5(p.user_id)`,
  ),
  refused("hash", "sum(hash(user_id))", `SELECT sum(hash(p.user_id)) AS h FROM ${P} p`),
  refused(
    "hash",
    "sha256 of a dimension",
    `SELECT sha256(e.segment) AS h, count(*) AS n FROM ${E} e GROUP BY sha256(e.segment)`,
  ),
  refused(
    "hash",
    "hash of a measure as a dimension",
    `SELECT hash(p.amount) % 10 AS h, count(*) AS n FROM ${P} p GROUP BY hash(p.amount) % 10`,
  ),
  refused(
    "hash",
    "random() dimension",
    `SELECT random() < 0.5 AS r, count(*) AS n FROM ${P} p GROUP BY random() < 0.5`,
  ),
];

// ---------------------------------------------------------------------------------------------
// 8. Table functions and other sources, statements

const sources: AttackCase[] = [
  refused("table-function", "range()", `SELECT count(*) AS n FROM range(1000000000) t`),
  refused(
    "table-function",
    "range() joined",
    `SELECT count(*) AS n FROM ${P} p JOIN range(10) t ON t.range = p.amount`,
  ),
  refused("table-function", "read_csv of a local file", `SELECT count(*) AS n FROM read_csv('/etc/passwd')`),
  refused("table-function", "duckdb_tables()", `SELECT count(*) AS n FROM duckdb_tables()`),
  refused("table-function", "query('...')", `SELECT count(*) AS n FROM query('SELECT * FROM ${P}')`),
  refused("table-function", "query_table()", `SELECT count(*) AS n FROM query_table('${P}')`),
  refused("table-function", "generate_series", `SELECT count(*) AS n FROM generate_series(1, 10) g`),
  refused("table-function", "unnest in FROM", `SELECT count(*) AS n FROM unnest([1, 2, 3]) u`),
  refused("table-function", "VALUES", `SELECT count(*) AS n FROM (VALUES (1), (2)) v(x)`),
  refused(
    "table-function",
    "replacement scan of a URL",
    `SELECT count(*) AS n FROM 'https://example.com/x.csv'`,
  ),
  refused(
    "table-function",
    "read_text in an expression",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = (SELECT content FROM read_text('/etc/hostname'))`,
  ),
  refused(
    "table-function",
    "getenv",
    `SELECT getenv('HOME') AS h, count(*) AS n FROM ${P} p GROUP BY getenv('HOME')`,
  ),
  refused(
    "table-function",
    "current_setting",
    `SELECT current_setting('threads') AS s, count(*) AS n FROM ${P} p GROUP BY current_setting('threads')`,
  ),
  refused(
    "table-function",
    "qualified table main.advertiser_purchases",
    `SELECT count(*) AS n FROM main.${P} p`,
  ),
  refused("table-function", "TABLESAMPLE", `SELECT count(*) AS n FROM ${P} p TABLESAMPLE 10%`),
  refused("table-function", "USING SAMPLE", `SELECT count(*) AS n FROM ${P} p USING SAMPLE 1`),
  refused("table-function", "PIVOT", `PIVOT ${P} ON category USING sum(amount)`),
  refused("table-function", "FROM-first with SELECT *", `FROM ${P}`),
  refused("statement", "COPY TO a file", `COPY ${P} TO '/tmp/leak.csv'`),
  refused("statement", "ATTACH", `ATTACH '/tmp/leak.db' AS leak`),
  refused("statement", "SET", `SET enable_external_access = true`),
  refused("statement", "PRAGMA", `PRAGMA table_info('${P}')`),
  refused("statement", "INSTALL", `INSTALL httpfs`),
  refused("statement", "two statements", `SELECT count(*) AS n FROM ${P} p; DROP TABLE ${P}`),
  refused("statement", "CREATE MACRO", `CREATE MACRO leak(x) AS x`),
  // The aggregation rule re-emits the SQL and reads its hidden counts by position: a visible
  // column named like one is only a name.
  either("statement", "reserved hidden-column alias", `SELECT count(*) AS __cleanroom_k0 FROM ${P} p`),
  either(
    "statement",
    "reserved hidden-column alias next to a group of one",
    `SELECT p.category AS c, count(DISTINCT p.user_id) AS __cleanroom_k0 FROM ${P} p GROUP BY p.category`,
  ),
  refused(
    "statement",
    "deeply nested expression (30 000 levels)",
    `SELECT count(*) AS n FROM ${P} p WHERE ${"(".repeat(30_000)}p.category${")".repeat(30_000)} = 'x'`,
  ),
];

// ---------------------------------------------------------------------------------------------
// 9. Measures used as dimensions

const measuresAsDimensions: AttackCase[] = [
  refused(
    "measure-as-dimension",
    "GROUP BY p.amount",
    `SELECT p.amount AS a, count(*) AS n FROM ${P} p GROUP BY p.amount`,
  ),
  refused(
    "measure-as-dimension",
    "GROUP BY round(amount)",
    `SELECT round(p.amount) AS a, count(*) AS n FROM ${P} p GROUP BY round(p.amount)`,
  ),
  refused(
    "measure-as-dimension",
    "GROUP BY a CASE bucket of amount",
    `SELECT CASE WHEN p.amount > 1000 THEN 'big' ELSE 'small' END AS b, count(*) AS n FROM ${P} p GROUP BY CASE WHEN p.amount > 1000 THEN 'big' ELSE 'small' END`,
  ),
  refused(
    "measure-as-dimension",
    "amount in WHERE",
    `SELECT count(*) AS n FROM ${P} p WHERE p.amount BETWEEN 98765 AND 98766`,
  ),
  refused(
    "measure-as-dimension",
    "amount in a join condition",
    `SELECT count(*) AS n FROM ${E} e JOIN ${P} p ON p.user_id = e.user_id AND p.amount > 90000`,
  ),
  refused(
    "measure-as-dimension",
    "amount in HAVING without an aggregate",
    `SELECT count(*) AS n FROM ${P} p HAVING p.amount > 0`,
  ),
  refused(
    "measure-as-dimension",
    "count(*) FILTER on amount",
    `SELECT count(*) FILTER (WHERE p.amount > 90000) AS n FROM ${P} p`,
  ),
  refused(
    "measure-as-dimension",
    "coalesce(amount) as a dimension",
    `SELECT coalesce(p.amount, 0) AS a, count(*) AS n FROM ${P} p GROUP BY coalesce(p.amount, 0)`,
  ),
  refused("measure-as-dimension", "sum of a dimension", `SELECT sum(year(p.purchase_ts)) AS y FROM ${P} p`),
];

// ---------------------------------------------------------------------------------------------
// 10. Trojan Source: what a reviewer reads is not what the engine runs

const trojan: AttackCase[] = [
  refused(
    "trojan-source",
    "bidi override (U+202E) inside the SQL",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = 'shoes\u202E' -- '\u202C`,
  ),
  refused(
    "trojan-source",
    "right-to-left isolate (U+2067) in a comment",
    `SELECT count(*) AS n FROM ${P} p /*\u2067 WHERE p.user_id = 'x' \u2069*/`,
  ),
  refused("trojan-source", "zero-width space in an identifier", `SELECT count(*) AS n\u200B FROM ${P} p`),
  refused(
    "trojan-source",
    "zero-width joiner",
    `SELECT count(*) AS n FROM ${P} p WHERE p.category = 'sh\u200Does'`,
  ),
  refused("trojan-source", "byte-order mark", `\uFEFFSELECT count(*) AS n FROM ${P} p`),
  refused("trojan-source", "bidi override in the description", `SELECT count(*) AS n FROM ${P} p`, {
    description: "Counts purchases \u202Eyllaunna\u202C",
  }),
  refused("trojan-source", "zero-width space in the description", `SELECT count(*) AS n FROM ${P} p`, {
    description: "Total\u200B purchases",
  }),
  refused(
    "trojan-source",
    "control character (ESC) in the SQL",
    `SELECT count(*) AS n FROM ${P} p \u001b[2K`,
  ),
  refused(
    "trojan-source",
    "line separator U+2028",
    `SELECT count(*) AS n FROM ${P} p\u2028WHERE p.category = 'x'`,
  ),
];

// ---------------------------------------------------------------------------------------------
// 11. Differential-privacy holes under the custom rule

const dpBase = (over: Partial<DpPolicy> = {}): DpPolicy => ({
  epsilon: 1,
  budget: 10,
  groups: "single",
  // More than the target's rows of either table (5 purchases, 3 exposures): its unique rows stay
  // in, and a join of its rows (15 and more) must still count as at most 6.
  maxRowsPerIdentity: 6,
  columns: [{ name: "n", kind: "count" }],
  ...over,
});
const custom = (
  name: string,
  sql: string,
  dp: DpPolicy,
  expect: AttackCase["expect"],
  extra: Extra & { cls?: string } = {},
): AttackCase => ({
  cls: "dp-custom",
  name,
  sql,
  kind: "custom",
  dp,
  expect,
  ...extra,
});

const dpHoles: AttackCase[] = [
  custom(
    'groups "public" with GROUP BY amount and the target\'s amount in the domain',
    `SELECT p.amount AS a, count(*) AS n FROM ${P} p GROUP BY p.amount`,
    dpBase({ groups: "public", domain: [{ column: "a", values: [TARGET.amount, CHANGED.amount, 10] }] }),
    "either",
  ),
  custom(
    "GROUP BY the row struct p",
    `SELECT p AS r, count(*) AS n FROM ${P} p GROUP BY p`,
    dpBase({ groups: "private" }),
    "refused",
  ),
  custom(
    "GROUP BY the identity under private groups",
    `SELECT p.user_id AS u, count(*) AS n FROM ${P} p GROUP BY p.user_id`,
    dpBase({ groups: "private" }),
    "either",
  ),
  custom(
    "WHERE subquery on the other dataset multiplying one person's rows",
    `SELECT count(*) AS n FROM ${P} p WHERE p.user_id IN (SELECT e.user_id FROM ${E} e)`,
    dpBase(),
    "either",
  ),
  custom(
    "FROM subquery joining the datasets (rows multiplied past the bound)",
    `SELECT count(*) AS n FROM (SELECT p.amount FROM ${P} p JOIN ${E} e ON e.user_id = p.user_id JOIN ${E} f ON f.user_id = p.user_id) t`,
    dpBase(),
    "either",
  ),
  custom(
    "self join in the top-level FROM",
    `SELECT count(*) AS n FROM ${P} p JOIN ${P} q ON q.user_id = p.user_id`,
    dpBase(),
    "either",
  ),
  custom(
    "renamed columns: count(DISTINCT) of a renamed amount passed off as the identity",
    `SELECT count(DISTINCT p.user_id) AS n FROM ${P} AS p(x, t, user_id, c)`,
    dpBase({ columns: [{ name: "n", kind: "count-distinct" }] }),
    "either",
  ),
  custom(
    "sum over a renamed column, clamp bypassed?",
    `SELECT sum(p.a) AS s FROM ${P} AS p(u, t, a, c)`,
    dpBase({ clamp: { lower: 0, upper: 100 }, columns: [{ name: "s", kind: "sum" }] }),
    "either",
  ),
  custom(
    "sum of amount times 1000 (clamp applies to the expression)",
    `SELECT sum(p.amount * 1000) AS s FROM ${P} p`,
    dpBase({ clamp: { lower: 0, upper: 100 }, columns: [{ name: "s", kind: "sum" }] }),
    "either",
  ),
  custom(
    "UNION ALL of the table with itself in a CTE (each person counted twice per copy)",
    `WITH t AS (SELECT * FROM ${P} UNION ALL SELECT * FROM ${P}) SELECT count(*) AS n FROM t`,
    dpBase(),
    "either",
  ),
  custom(
    "scalar subquery outside any aggregate (exact value)",
    `SELECT count(*) AS n, (SELECT max(x.amount) FROM ${P} x) AS top FROM ${P} p`,
    dpBase(),
    "refused",
  ),
  custom(
    "output computed on an exact aggregate",
    `SELECT count(*) AS n, sum(p.amount) > 90000 AS big FROM ${P} p`,
    dpBase(),
    "refused",
  ),
  custom(
    "HAVING on an exact aggregate",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category HAVING max(p.amount) > 90000`,
    dpBase({ groups: "private" }),
    "refused",
  ),
  custom(
    "ORDER BY an exact aggregate with LIMIT",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category ORDER BY sum(p.amount) DESC LIMIT 1`,
    dpBase({ groups: "private" }),
    "refused",
  ),
  custom("count column that is really max()", `SELECT max(p.amount) AS n FROM ${P} p`, dpBase(), "refused"),
  custom(
    "window function in a FROM subquery (row numbers per person)",
    `SELECT count(*) AS n FROM (SELECT p.*, row_number() OVER (PARTITION BY p.user_id) AS r FROM ${P} p) t WHERE t.r <= 100`,
    dpBase(),
    "either",
  ),
  custom(
    "private groups keyed by the target's unique timestamp",
    `SELECT p.purchase_ts AS t, count(*) AS n FROM ${P} p GROUP BY p.purchase_ts`,
    dpBase({ groups: "private" }),
    "either",
  ),
  custom("table function in a custom query", `SELECT count(*) AS n FROM range(10) t`, dpBase(), "refused"),
  custom(
    "identity of the row leaves through a group key (list)",
    `SELECT list(p.user_id) AS l, count(*) AS n FROM ${P} p GROUP BY p.category`,
    dpBase({ groups: "private" }),
    "refused",
  ),
  custom(
    "reserved hidden-column alias as a noised count (the threshold reads it by name)",
    `SELECT p.category AS c, count(*) AS __cleanroom_k0 FROM ${P} p GROUP BY p.category`,
    dpBase({ groups: "private", columns: [{ name: "__cleanroom_k0", kind: "count" }] }),
    "refused",
  ),
  custom("custom without a dp policy", `SELECT count(*) AS n FROM ${P} p`, dpBase(), "refused", {
    dp: undefined,
  }),
];

// ---------------------------------------------------------------------------------------------
// 13. Benign: the demo's use cases and variations (must be admitted, leak-free)

const benign: AttackCase[] = [
  admitted("benign", "use case: closed-loop measurement", closedLoop.sql, {
    parameters: closedLoop.parameters,
    runs: [{ campaign: "spring24" }, { campaign: "summer24" }],
  }),
  admitted("benign", "use case: audience overlap", audienceOverlap.sql),
  admitted("benign", "use case: audience insight", audienceInsight.sql, {
    parameters: audienceInsight.parameters,
    runs: [{ category: "shoes" }, { category: TARGET.category }],
  }),
  admitted(
    "benign",
    "revenue per category",
    `SELECT p.category AS c, count(DISTINCT p.user_id) AS buyers, round(sum(p.amount), 2) AS revenue, round(avg(p.amount), 2) AS mean FROM ${P} p GROUP BY p.category`,
  ),
  admitted(
    "benign",
    "purchases per week",
    `SELECT date_trunc('week', p.purchase_ts) AS week, count(*) AS purchases, count(DISTINCT p.user_id) AS buyers FROM ${P} p GROUP BY date_trunc('week', p.purchase_ts)`,
  ),
  admitted(
    "benign",
    "exposures by segment and arm",
    `SELECT e.segment AS segment, e.arm AS arm, count(DISTINCT e.user_id) AS users, count(*) AS exposures FROM ${E} e WHERE e.campaign = $campaign GROUP BY e.segment, e.arm`,
    { parameters: [vc("campaign")], runs: [{ campaign: "spring24" }] },
  ),
  admitted(
    "benign",
    "conversion by channel and day of week",
    `SELECT e.channel AS channel, dayofweek(e.exposure_ts) AS dow, count(DISTINCT e.user_id) AS users, count(DISTINCT p.user_id) AS buyers FROM ${E} e LEFT JOIN ${P} p ON p.user_id = e.user_id AND p.purchase_ts >= e.exposure_ts GROUP BY e.channel, dayofweek(e.exposure_ts)`,
  ),
  admitted(
    "benign",
    "buyers' age bands after a date",
    `SELECT e.age_band AS band, count(DISTINCT p.user_id) AS buyers, sum(p.amount) AS revenue FROM ${P} p JOIN ${E} e ON e.user_id = p.user_id WHERE p.purchase_ts >= $since GROUP BY e.age_band`,
    {
      parameters: [tsp("since")],
      runs: [{ since: "2024-04-10 00:00:00" }, { since: "2024-04-19 00:00:00" }],
    },
  ),
  admitted(
    "benign",
    "one total row",
    `SELECT count(DISTINCT p.user_id) AS buyers, round(sum(p.amount) / count(*), 2) AS per_purchase FROM ${P} p`,
  ),
  admitted(
    "benign",
    "segments with at least 30 users",
    `SELECT e.segment AS s, count(DISTINCT e.user_id) AS n FROM ${E} e GROUP BY e.segment HAVING count(DISTINCT e.user_id) >= 30`,
  ),
  admitted(
    "benign",
    "category prefix and hour bucket",
    `SELECT upper(left(p.category, 2)) AS c2, hour(p.purchase_ts) // 6 AS quarter_day, count(DISTINCT p.user_id) AS n FROM ${P} p GROUP BY upper(left(p.category, 2)), hour(p.purchase_ts) // 6`,
  ),
  admitted(
    "benign",
    "campaign IN list and NOT NULL predicate",
    `SELECT e.campaign AS c, count(DISTINCT e.user_id) AS n FROM ${E} e WHERE e.campaign IN ('spring24', 'summer24') AND e.segment IS NOT NULL GROUP BY e.campaign`,
  ),
  custom(
    "use case: last-touch attribution (custom rule, DP)",
    lastTouch.sql,
    lastTouch.policy.dp!,
    "admitted",
    {
      cls: "benign",
      parameters: lastTouch.parameters,
      runs: [{ start: "2024-04-01", end: "2024-05-01" }],
      allowedColumns: lastTouch.policy.allowedColumns,
    },
  ),
  custom(
    "DP count per segment over the public domain",
    `SELECT e.segment AS segment, count(DISTINCT e.user_id) AS users FROM ${E} e GROUP BY e.segment`,
    dpBase({
      groups: "public",
      domain: [{ column: "segment", values: ["sports", "news", "finance", "lifestyle", TARGET.segment] }],
      columns: [{ name: "users", kind: "count-distinct" }],
    }),
    "admitted",
    { cls: "benign" },
  ),
  custom(
    "DP revenue per category, private groups",
    `SELECT p.category AS category, count(*) AS n, sum(p.amount) AS revenue FROM ${P} p GROUP BY p.category`,
    dpBase({
      groups: "private",
      clamp: { lower: 0, upper: 300 },
      columns: [
        { name: "n", kind: "count" },
        { name: "revenue", kind: "sum", decimals: 2 },
      ],
    }),
    "admitted",
    { cls: "benign" },
  ),
];

// ---------------------------------------------------------------------------------------------
// 12. Error oracles: whether the run fails depends on one person's row

const BOOM = "9223372036854775807";
const errorOracles: AttackCase[] = [
  either(
    "error-oracle",
    "INT64 overflow in an aggregate of a suppressed group (fails iff some category has exactly one buyer)",
    `SELECT p.category AS c, count(*) AS n, ${BOOM} * greatest(0, 2 - abs(count(DISTINCT p.user_id) - 1)) AS boom FROM ${P} p GROUP BY p.category`,
  ),
  either(
    "error-oracle",
    "INT64 overflow in an aggregate of a suppressed group picked by a parameter, next to a released one",
    `SELECT p.category AS c, count(*) AS n, ${BOOM} * greatest(0, 2 - abs(count(DISTINCT p.user_id) - 1)) AS boom FROM ${P} p WHERE p.category = $cat OR p.category = 'beauty' GROUP BY p.category`,
    cat,
  ),
  either(
    "error-oracle",
    "INT64 overflow in WHERE on one person's row (fails iff the yachts purchase was at minute 44)",
    `SELECT count(*) AS n FROM ${P} p WHERE CASE WHEN p.category = 'yachts' THEN ${BOOM} * greatest(0, 2 - abs(minute(p.purchase_ts) - 44)) ELSE 0 END = 0`,
  ),
  either(
    "error-oracle",
    "INT64 overflow in a GROUP BY expression on one person's row",
    `SELECT p.category AS c, count(*) AS n FROM ${P} p GROUP BY p.category, CASE WHEN p.category = 'yachts' THEN ${BOOM} * greatest(0, 2 - abs(hour(p.purchase_ts) - 4)) ELSE 0 END`,
  ),
  either(
    "error-oracle",
    "INT32 overflow of a cast count in a suppressed group (exactly 3 exposures)",
    `SELECT e.segment AS s, 2147483647 * greatest(0, 2 - abs(CAST(count(*) AS INTEGER) - 3)) AS boom FROM ${E} e GROUP BY e.segment`,
  ),
  either(
    "error-oracle",
    "date arithmetic overflow on one person's timestamp",
    `SELECT count(*) AS n FROM ${E} e WHERE e.segment = $seg AND e.exposure_ts + to_years(CAST(${BOOM} * greatest(0, 2 - abs(minute(e.exposure_ts) - 33)) AS INTEGER)) IS NOT NULL`,
    seg,
  ),
  either(
    "error-oracle",
    "implicit cast of a text dimension in a comparison (conversion error on one person's row)",
    `SELECT count(*) AS n FROM ${P} p WHERE CASE WHEN p.category = 'yachts' THEN 'x' ELSE '1' END = 1`,
  ),
  either(
    "error-oracle",
    "a BIGINT literal past 2^53 (the enclave must run the constant that was signed)",
    `SELECT p.category AS c, count(*) + 9007199254740993 AS x FROM ${P} p GROUP BY p.category`,
  ),
  either(
    "error-oracle",
    "abs() of the smallest INT64 on one person's row",
    `SELECT count(*) AS n FROM ${P} p WHERE abs(CASE WHEN p.category = 'yachts' THEN -9223372036854775807 - 1 ELSE 0 END) >= 0`,
  ),
  either(
    "error-oracle",
    "division by zero (NULL in DuckDB, not an error) on a one-person group",
    `SELECT p.category AS c, 1 // (count(DISTINCT p.user_id) - 1) AS x FROM ${P} p WHERE p.category = $cat GROUP BY p.category`,
    cat,
  ),
];

export const QUERY_ATTACKS: AttackCase[] = [
  ...errorOracles,
  ...identityViaRow,
  ...bitByBit,
  ...oneValue,
  ...whereKDoesNotLook,
  ...joins,
  ...shapes,
  ...scalars,
  ...sources,
  ...measuresAsDimensions,
  ...trojan,
  ...dpHoles,
];
export const BENIGN: AttackCase[] = benign;

// ---------------------------------------------------------------------------------------------
// Requests against the end-to-end room

/** A query request by a party, against the loaded room. */
export interface RequestAttack {
  name: string;
  as: "advertiser" | "publisher";
  /** One request, or several in order (the last one's outcome is checked). */
  requests: QueryBody[];
  /**
   * Refused with this code, or neutralised: answered, and `check` holds for the decoded rows (the
   * result holds nothing else: no count of the groups held back).
   */
  expect: { refused: string } | { neutralised: (r: { rows: unknown[][] }) => boolean };
}

const q = (queryId: string, params: QueryBody["params"] = {}): QueryBody => ({
  queryId,
  params,
  resultFormat: "json",
});
const empty = { neutralised: (r: { rows: unknown[][] }) => r.rows.length === 0 };
const window = (from: string, to: string) => q("spend-window", { from, to });

export const REQUEST_ATTACKS: RequestAttack[] = [
  // Unapproved access.
  {
    name: "unapproved query id",
    as: "advertiser",
    requests: [q("select-star")],
    expect: { refused: "ERR_QUERY_NOT_APPROVED" },
  },
  {
    name: "query id with SQL in it",
    as: "advertiser",
    requests: [q("by-category; SELECT * FROM advertiser_purchases")],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "runner not allowed",
    as: "publisher",
    requests: [q("audience-insight", { category: "shoes" })],
    expect: { refused: "ERR_NOT_PERMITTED" },
  },
  // SQL, file and network access through parameters: bound as values, never spliced.
  {
    name: "SQL injection in VARCHAR",
    as: "advertiser",
    requests: [q("closed-loop", { campaign: "x' OR '1'='1" })],
    expect: empty,
  },
  {
    name: "stacked statement in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "shoes'; SELECT * FROM advertiser_purchases; --" })],
    expect: empty,
  },
  {
    name: "file function in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "' || (SELECT content FROM read_text('/etc/passwd')) || '" })],
    expect: empty,
  },
  {
    name: "network function in VARCHAR",
    as: "advertiser",
    requests: [
      q("by-category", { category: "x' UNION SELECT * FROM read_csv('https://example.com/a.csv') --" }),
    ],
    expect: empty,
  },
  {
    name: "SQL in a TIMESTAMP parameter",
    as: "publisher",
    requests: [window("2024-04-01' OR 1=1 --", "2024-05-01 00:00:00")],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "number for a TIMESTAMP parameter",
    as: "publisher",
    requests: [q("spend-window", { from: 0, to: "2024-05-01 00:00:00" })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "non-finite number",
    as: "publisher",
    requests: [q("spend-window", { from: Number.NaN, to: "2024-05-01 00:00:00" })],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "TIMESTAMP out of range",
    as: "publisher",
    requests: [window("99999-01-01 00:00:00", "2024-05-01 00:00:00")],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "extra parameter",
    as: "advertiser",
    requests: [q("by-category", { category: "shoes", user_id: "x" })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "missing parameter",
    as: "advertiser",
    requests: [q("by-category")],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "NUL and control bytes in VARCHAR",
    as: "advertiser",
    requests: [q("by-category", { category: "\u0000\u001b[2J" })],
    expect: empty,
  },
  // Isolating one person with an approved query: the group is below k and suppressed, which reads
  // exactly like a filter that matches no one (the control in attacks.test.ts checks the canaries
  // are there).
  {
    name: "canary category isolates one buyer",
    as: "advertiser",
    requests: [q("by-category", { category: CANARY.category })],
    expect: empty,
  },
  {
    name: "time window around the canary purchase isolates one buyer",
    as: "publisher",
    requests: [window(CANARY_PURCHASE_TS, "2024-04-10 12:34:57")],
    expect: empty,
  },
  {
    name: "canary segment isolates one person",
    as: "advertiser",
    requests: [q("segment-of", { segment: CANARY.segment })],
    expect: empty,
  },
  // Differencing: two runs whose groups differ by one person. maxRuns stops the second.
  {
    name: "differencing across runs (maxRuns)",
    as: "publisher",
    requests: [
      q("spend-window-once", { to: "2024-06-01 00:00:00" }),
      q("spend-window-once", { to: CANARY_PURCHASE_TS }),
    ],
    expect: { refused: "ERR_MAX_RUNS" },
  },
  // Error-message exfiltration: the engine's message would quote the row value. The enclave makes
  // every cast a TRY_CAST, so nothing fails on a value (a failure would itself be an oracle).
  {
    name: "cast of a row value that does not convert",
    as: "publisher",
    requests: [q("cast-error", { category: "x" })],
    expect: empty,
  },
  // Resource exhaustion.
  {
    name: "huge VARCHAR parameter (8 KiB)",
    as: "advertiser",
    requests: [q("by-category", { category: "A".repeat(8192) })],
    expect: { refused: "ERR_QUERY_PARAMETER" },
  },
  {
    name: "huge request (600 KiB)",
    as: "advertiser",
    requests: [q("by-category", { category: "A".repeat(600 * 1024) })],
    expect: { refused: "ERR_ENVELOPE" },
  },
  {
    name: "too many parameters",
    as: "advertiser",
    requests: [q("by-category", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, i])))],
    expect: { refused: "ERR_ENVELOPE" },
  },
  // Rolling the room back or asking for other formats.
  {
    name: "forged ledger head",
    as: "advertiser",
    requests: [
      { ...q("by-category", { category: "shoes" }), auditHead: { seq: 99_999, hash: "ab".repeat(32) } },
    ],
    expect: { refused: "ERR_AUDIT_ROLLBACK" },
  },
  {
    name: "unknown result format",
    as: "advertiser",
    requests: [{ ...q("by-category", { category: "shoes" }), resultFormat: "parquet" as "json" }],
    expect: { refused: "ERR_ENVELOPE" },
  },
];
