/**
 * The two-dataset judge: attack queries are judged by what they release, not by how they read.
 *
 * A small population (the demo's two datasets, sha256-hex identities) holds a TARGET person with
 * distinctive values. D contains the target, D' ("minus") is D without the target's rows, and
 * "changed" is D with the target's values changed. An attack is put in a contract as a signed
 * party would; validateContract and checkContractQueries either refuse it (the reason is
 * recorded), or it is run through the enclave's own path (runApprovedQuery on a locked engine per
 * variant) with the attacker's chosen parameters, and the released outputs are compared.
 *
 * Who "fed" a differing output is counted independently, in a separate plain DuckDB instance (no
 * lock, no suppression, no grammar; only the rules' documented run semantics, TRY_CAST and TRY),
 * by ablation: the contract's SQL runs on D with one person's rows removed from one table (or from
 * every table), and a person fed a released cell if that removal changes the cell, or decided a
 * released row's presence if it adds or removes the row. A LEAK is a released difference between
 * D and a variant that the target feeds (or decides) through some table together with fewer than
 * k people (k per table). A run that fails on one variant and not another is judged the same way
 * (who decides the failure). A released row whose values differ from what the contract's SQL
 * computes on the same data is a MISMATCH (the enclave released something the parties did not
 * sign). Differential-privacy results are judged on their exact pre-noise rows: the change the
 * target makes to each noised column must stay within the sensitivity the noise is calibrated
 * for, and to a private group's threshold count within one person's share.
 *
 * Counting is cheap where it may be: people are removed in blocks first (k - 1 blocks that change
 * a difference besides the target show it is not one person's), and one at a time only inside the
 * blocks that changed something when fewer are found (which can only report more leaks).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance, type Json } from "@duckdb/node-api";
import { isCleanroomError } from "../../attestation/errors.js";
import { checkContractQueries } from "../../enclave/sql/check.js";
import * as dpRewrite from "../../enclave/sql/dp-rewrite.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { validateParameters } from "../../enclave/sql/params.js";
import { type QueryResult, runApprovedQuery } from "../../enclave/sql/run.js";
import type {
  AnalysisRuleKind,
  ApprovedQuery,
  Contract,
  Dataset,
  DpPolicy,
  Parameter,
} from "../../protocol/contract/types.js";
import { validateContract } from "../../protocol/contract/validate.js";
import { exposures, purchases } from "../../scripts/demo/usecases.js";
import { makeContract, makeParty } from "../protocol/fixtures.js";
import { csvStream } from "../sql/helpers.js";

/** Whether the custom rule's rewrite (enclave/sql/dp-rewrite.ts customSql) is in place yet. */
export const DP_READY = typeof (dpRewrite as Record<string, unknown>)["customSql"] === "function";

/** k of the judge's contracts (the floor every contract must meet). */
export const K = 10;

const sha = (s: string): string => createHash("sha256").update(s).digest("hex");

/** The person every attack is after: values nobody else has. */
export const TARGET = {
  id: sha("judge-target@example.com"),
  category: "yachts",
  amount: 98765.43,
  purchaseTs: "2024-04-19 04:44:44",
  exposureTs: "2024-04-17 03:33:33",
  segment: "vip-collectors",
  ageBand: "65+",
  campaign: "spring24",
  channel: "ctv",
  arm: "exposed",
} as const;

/** The target's other rows (3 exposures, 5 purchases in all: more than a DP row bound of 3). */
const TARGET_EXPOSURES = [TARGET.exposureTs, "2024-04-22 10:00:00", "2024-04-25 10:00:00"];
const TARGET_SHOES = [55.5, 61, 72.25, 80];
const TARGET_OTHER_TS = [
  ...TARGET_EXPOSURES.slice(1),
  ...TARGET_SHOES.map((_, i) => `2024-04-2${i} 12:00:00`),
];

/** The target's values in the "changed" variant. */
export const CHANGED = {
  category: "submarines",
  amount: 12345.67,
  purchaseTs: "2024-04-21 06:06:06",
  exposureTs: "2024-04-18 05:55:55",
  segment: "vip-divers",
  ageBand: "18-34",
} as const;

export type Variant = "D" | "minus" | "changed";
export const VARIANTS: Variant[] = ["D", "minus", "changed"];

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const pad = (n: number) => String(n).padStart(2, "0");
const aprilTs = (r: () => number): string =>
  `2024-04-${pad(1 + Math.floor(r() * 28))} ${pad(Math.floor(r() * 24))}:${pad(Math.floor(r() * 60))}:${pad(Math.floor(r() * 60))}`;

export interface PurchaseRow {
  user_id: string;
  purchase_ts: string;
  amount: number;
  category: string;
}
export interface ExposureRow {
  user_id: string;
  exposure_ts: string;
  campaign: string;
  channel: string;
  arm: string;
  segment: string;
  age_band: string;
}
export interface Population {
  purchases: PurchaseRow[];
  exposures: ExposureRow[];
}

export const CATEGORIES = ["shoes", "apparel", "electronics", "beauty"];
export const SEGMENTS = ["sports", "news", "finance", "lifestyle"];
export const CHANNELS = ["ctv", "display", "social"];
export const AGE_BANDS = ["18-34", "35-49", "50-64"];

/**
 * `people` publisher users (1-3 exposures each, 70 % exposed arm, 20 % in campaign summer24, four
 * segments, a rare "65+" band of 4 people), about 60 % of them (45 % of control) also buyers with
 * 1-3 purchases of 5-300, a rare "watches" category of 3 buyers, and `people / 5` buyers the
 * publisher does not know; plus the target (values above).
 */
export function population(seed = 7, people = 200): Population {
  const r = prng(seed);
  const out: Population = { purchases: [], exposures: [] };
  const taken = new Set<string>([
    TARGET.exposureTs,
    TARGET.purchaseTs,
    CHANGED.exposureTs,
    CHANGED.purchaseTs,
    ...TARGET_OTHER_TS,
  ]);
  const ts = (): string => {
    for (;;) {
      const t = aprilTs(r);
      if (!taken.has(t)) {
        taken.add(t);
        return t;
      }
    }
  };
  const rare = new Set([3, 57, 111, 170].filter((i) => i < people));
  const watches = new Set([5, 66, 140].filter((i) => i < people));
  const buys = (id: string, n: number, i: number) => {
    for (let j = 0; j < n; j++) {
      out.purchases.push({
        user_id: id,
        purchase_ts: ts(),
        amount: Math.round((5 + r() * 295) * 100) / 100,
        category: watches.has(i) && j === 0 ? "watches" : pick(r, CATEGORIES),
      });
    }
  };
  for (let i = 0; i < people; i++) {
    const id = sha(`person${i}@example.com`);
    const arm = r() < 0.7 ? "exposed" : "control";
    const campaign = r() < 0.2 ? "summer24" : "spring24";
    const segment = pick(r, SEGMENTS);
    const age = rare.has(i) ? "65+" : pick(r, AGE_BANDS);
    const n = 1 + Math.floor(r() * 3);
    for (let j = 0; j < n; j++) {
      out.exposures.push({
        user_id: id,
        exposure_ts: ts(),
        campaign,
        channel: pick(r, CHANNELS),
        arm,
        segment,
        age_band: age,
      });
    }
    if (watches.has(i) || r() < (arm === "exposed" ? 0.6 : 0.45)) buys(id, 1 + Math.floor(r() * 3), i);
  }
  for (let i = people; i < people + Math.floor(people / 5); i++) {
    buys(sha(`person${i}@example.com`), 1 + Math.floor(r() * 2), i);
  }
  return out;
}

/** D, D' (without the target) and D with the target's values changed. */
export function variants(base: Population): Record<Variant, Population> {
  const t = TARGET;
  const D: Population = {
    exposures: [
      ...base.exposures,
      ...TARGET_EXPOSURES.map((ts, i) => ({
        user_id: t.id,
        exposure_ts: ts,
        campaign: t.campaign,
        channel: i === 0 ? t.channel : "social",
        arm: t.arm,
        segment: t.segment,
        age_band: t.ageBand,
      })),
    ],
    purchases: [
      ...base.purchases,
      { user_id: t.id, purchase_ts: t.purchaseTs, amount: t.amount, category: t.category },
      ...TARGET_SHOES.map((amount, i) => ({
        user_id: t.id,
        purchase_ts: `2024-04-2${i} 12:00:00`,
        amount,
        category: "shoes",
      })),
    ],
  };
  const c = CHANGED;
  const changed: Population = {
    exposures: D.exposures.map((e) =>
      e.user_id !== t.id
        ? e
        : e.exposure_ts === t.exposureTs
          ? { ...e, exposure_ts: c.exposureTs, segment: c.segment, age_band: c.ageBand }
          : { ...e, segment: c.segment, age_band: c.ageBand },
    ),
    purchases: D.purchases.map((p) =>
      p.user_id !== t.id
        ? p
        : p.category === t.category
          ? { ...p, purchase_ts: c.purchaseTs, amount: c.amount, category: c.category }
          : { ...p, amount: p.amount + 7.7 },
    ),
  };
  return { D, minus: base, changed };
}

export function csvOf(which: "purchases" | "exposures", pop: Population): string {
  if (which === "purchases") {
    const lines = ["user_id,purchase_ts,amount,category"];
    for (const p of pop.purchases)
      lines.push(`${p.user_id},${p.purchase_ts},${p.amount.toFixed(2)},${p.category}`);
    return `${lines.join("\n")}\n`;
  }
  const lines = ["user_id,exposure_ts,campaign,channel,arm,segment,age_band"];
  for (const e of pop.exposures) {
    lines.push(
      `${e.user_id},${e.exposure_ts},${e.campaign},${e.channel},${e.arm},${e.segment},${e.age_band}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export const DATASETS: Dataset[] = [purchases, exposures];
const TABLE_OF = { purchases: purchases.id, exposures: exposures.id } as const;

/** Loads a population into a locked engine through the enclave's own ingest. */
export async function loadEngine(pop: Population, datasets = DATASETS): Promise<SqlEngine> {
  const engine = await openEngine({
    memoryLimit: "256MB",
    threads: 1,
    queryTimeoutMs: 10_000,
    maxResultRows: 20_000,
  });
  for (const which of ["purchases", "exposures"] as const) {
    const d = datasets.find((x) => x.id === TABLE_OF[which])!;
    await ingestDataset(engine, d, csvStream(csvOf(which, pop), 1 << 16));
  }
  return engine;
}

/**
 * A plain DuckDB (no lock, no rules) holding every variant: each dataset table is a view over one
 * variant's rows minus a chosen set of people, so the contract's own SQL runs as written on, say,
 * D without one person.
 */
export class Plain {
  readonly #dir: string;
  private constructor(
    readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    dir: string,
  ) {
    this.#dir = dir;
  }

  static async open(pops: Record<string, Population>): Promise<Plain> {
    const dir = mkdtempSync(join(tmpdir(), "judge-"));
    const instance = await DuckDBInstance.create(":memory:", { threads: "1" });
    const conn = await instance.connect();
    const plain = new Plain(instance, conn, dir);
    for (const d of DATASETS) {
      const which = d.id === purchases.id ? "purchases" : "exposures";
      const cols = d.columns.map((c) => `'${c.name}': '${c.type}'`).join(", ");
      const parts: string[] = [];
      for (const [name, pop] of Object.entries(pops)) {
        const file = join(dir, `${name}-${which}.csv`);
        writeFileSync(file, csvOf(which, pop));
        parts.push(`SELECT '${name}' AS ds, * FROM read_csv('${file}', header = true, columns = {${cols}})`);
      }
      await conn.run(`CREATE TABLE base_${d.id} AS ${parts.join(" UNION ALL ")}`);
      const names = d.columns.map((c) => c.name).join(", ");
      await conn.run(
        `CREATE VIEW ${d.id} AS SELECT ${names} FROM base_${d.id} WHERE ds = getvariable('ds') AND NOT list_contains(getvariable('ex')['${d.id}'], ${d.identityColumn})`,
      );
    }
    await plain.use("D");
    return plain;
  }

  /** Runs the views on variant `ds`, with nobody removed. */
  async use(ds: string): Promise<void> {
    await this.conn.run(`SET VARIABLE ds = '${ds}'`);
    await this.exclude([], []);
  }

  /** Removes `people` from `tables` (everyone else back in). */
  async exclude(people: string[], tables: string[]): Promise<void> {
    const list = `[${people.map((p) => `'${p.replaceAll("'", "''")}'`).join(", ")}]::VARCHAR[]`;
    const entries = DATASETS.map((d) => `'${d.id}': ${tables.includes(d.id) ? list : "[]::VARCHAR[]"}`);
    await this.conn.run(`SET VARIABLE ex = MAP {${entries.join(", ")}}`);
  }

  /** Identities of `tables` in variant `ds`, in a fixed pseudo-random order. */
  async people(ds: string, tables: string[]): Promise<string[]> {
    const union = tables
      .map((t) => {
        const d = DATASETS.find((x) => x.id === t)!;
        return `SELECT DISTINCT ${d.identityColumn} AS id FROM base_${t} WHERE ds = '${ds}'`;
      })
      .join(" UNION ");
    const r = await this.conn.runAndReadAll(`SELECT id FROM (${union}) ORDER BY md5(id || 'judge')`);
    return r.getRowsJson().map((x) => String(x[0]));
  }

  /**
   * The contract SQL as written, or, where it fails on these rows, an empty result marked failed
   * (what a failure looks like to a recipient is the judge's business, not the engine's).
   */
  async outcome(sql: string, parameters: Parameter[], params: Record<string, unknown>): Promise<Released> {
    try {
      return await this.run(sql, parameters, params);
    } catch (e) {
      if (e instanceof Error && /^(Out of Range|Conversion|Invalid Input) Error/.test(e.message)) {
        return { columns: [], rows: [], failed: true };
      }
      throw e;
    }
  }

  readonly #semantics = new Map<string, string>();

  /**
   * The contract SQL with the rules' documented run semantics (docs/QUERY-RULES.md) and nothing
   * else, done here on DuckDB's parse tree: every cast a TRY_CAST; under the aggregation rule,
   * WHERE and ON conjuncts and GROUP BY expressions (and the outputs that repeat them) under TRY,
   * and outputs that combine aggregates computed in DOUBLE.
   * Integers of the tree stay exact (JSON numbers past 2^53 are carried as text).
   */
  async semantics(sql: string): Promise<string> {
    const known = this.#semantics.get(sql);
    if (known !== undefined) return known;
    const r = await this.conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
    const text = String(r.getRows()[0]?.[0] ?? "")
      .replace(/"query_location":\d+/g, '"query_location":0')
      .replace(/:(-?\d{16,})(?=[,}\]])/g, ':"@@int@@$1"');
    const tree = JSON.parse(text) as { error?: boolean; statements?: { node: Tree }[] };
    let out = sql;
    const root = tree.statements?.[0]?.node;
    if (!tree.error && root) {
      walkTree(root, (n) => {
        if (n.class === "CAST") n.try_cast = true;
      });
      if (this.aggregationRule) tryWrap(root);
      const json = JSON.stringify(tree).replace(/"@@int@@(-?\d+)"/g, "$1");
      const back = await this.conn.runAndReadAll("SELECT json_deserialize_sql($1::VARCHAR)", [json]);
      out = String(back.getRows()[0]?.[0] ?? sql);
    }
    this.#semantics.set(sql, out);
    return out;
  }

  /** Whether queries run here follow the aggregation rule's semantics (TRY) or only TRY_CAST. */
  aggregationRule = true;

  /** The contract SQL (with TRY_CAST for CAST), parameters bound as values, no rules. */
  async run(sql: string, parameters: Parameter[], params: Record<string, unknown>): Promise<Released> {
    const bound = validateParameters(parameters, params);
    const values = Object.fromEntries(bound.map((p) => [p.name, p.value]));
    const r = await this.conn.runAndReadAll(await this.semantics(sql), bound.length ? values : undefined);
    return { columns: r.columnNames(), rows: r.getRowsJson() };
  }

  async parse(sql: string): Promise<Record<string, unknown> | undefined> {
    const r = await this.conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
    const tree = JSON.parse(String(r.getRows()[0]?.[0] ?? "{}")) as {
      error?: boolean;
      statements?: { node: Record<string, unknown> }[];
    };
    return tree.error ? undefined : tree.statements?.[0]?.node;
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

export interface Released {
  columns: string[];
  rows: Json[][];
  /** The SQL failed on the data (raw runs only). */
  failed?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Comparing outputs

function num(v: Json): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(v)) return Number(v);
  return undefined;
}

/** Cell equality; numbers within a relative 1e-9 (sums of doubles in another order). */
export function sameCell(a: Json | undefined, b: Json | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  // BIGINT, HUGEINT: exact (a double would round them).
  if (typeof a === "string" && typeof b === "string" && /^-?\d+$/.test(a) && /^-?\d+$/.test(b))
    return a === b;
  const x = num(a);
  const y = num(b);
  if (x !== undefined && y !== undefined)
    return Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
  return JSON.stringify(a) === JSON.stringify(b);
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v);
const shapeOf = (n: unknown): string =>
  JSON.stringify(n, (k, v) => (k === "alias" || k === "query_location" ? undefined : v));

function walkTree(node: unknown, visit: (n: Tree) => void): void {
  if (Array.isArray(node)) for (const c of node) walkTree(c, visit);
  else if (isTree(node)) {
    visit(node);
    for (const c of Object.values(node)) walkTree(c, visit);
  }
}

const TRY = (child: unknown): Tree => ({
  class: "OPERATOR",
  type: "OPERATOR_TRY",
  alias: "",
  query_location: 0,
  children: [child],
});

function andParts(n: unknown): unknown[] {
  return isTree(n) && n.class === "CONJUNCTION" && n.type === "CONJUNCTION_AND"
    ? (n.children as unknown[]).flatMap(andParts)
    : [n];
}

const andOf = (parts: unknown[]): unknown =>
  parts.length === 1
    ? parts[0]
    : { class: "CONJUNCTION", type: "CONJUNCTION_AND", alias: "", query_location: 0, children: parts };

const AGGREGATES = new Set(["count_star", "count", "sum", "avg", "min", "max", "median"]);
const isAggregate = (n: unknown): boolean =>
  isTree(n) && n.class === "FUNCTION" && AGGREGATES.has(String(n.function_name).toLowerCase());

/** An output combining aggregates computes in DOUBLE: each aggregate in it is cast; a bare one is not. */
function doubled(item: Tree): Tree {
  if (isAggregate(item)) return item;
  const visit = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(visit);
    if (!isTree(n)) return n;
    if (isAggregate(n)) {
      return {
        class: "CAST",
        type: "OPERATOR_CAST",
        alias: "",
        query_location: 0,
        child: n,
        cast_type: { id: "DOUBLE", type_info: null },
        try_cast: false,
      };
    }
    return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, visit(v)]));
  };
  return visit(item) as Tree;
}

/** No row's value fails an aggregation query: its predicates and dimensions run under TRY. */
function tryWrap(root: Tree): void {
  if (root.type !== "SELECT_NODE") return;
  const groups = Array.isArray(root.group_expressions) ? (root.group_expressions as Tree[]) : [];
  const shapes = new Set(groups.map(shapeOf));
  root.group_expressions = groups.map(TRY);
  if (Array.isArray(root.select_list)) {
    root.select_list = (root.select_list as Tree[]).map((item) =>
      shapes.has(shapeOf(item)) ? { ...TRY({ ...item, alias: "" }), alias: item.alias } : doubled(item),
    );
  }
  if (isTree(root.where_clause)) root.where_clause = andOf(andParts(root.where_clause).map(TRY));
  walkTree(root.from_table, (n) => {
    if (n.type === "JOIN" && isTree(n.condition)) n.condition = andOf(andParts(n.condition).map(TRY));
  });
}

/** Output columns that are GROUP BY expressions (a row's key), read from DuckDB's own parse tree. */
export function keyColumns(root: Tree | undefined, columns: string[]): string[] {
  if (root?.type !== "SELECT_NODE") return [];
  const groups = Array.isArray(root.group_expressions) ? root.group_expressions : [];
  const shapes = new Set(groups.map(shapeOf));
  const items = Array.isArray(root.select_list) ? (root.select_list as Tree[]) : [];
  const keys: string[] = [];
  items.forEach((item, i) => {
    if (shapes.has(shapeOf(item)) && columns[i] !== undefined) keys.push(columns[i]!);
  });
  return keys;
}

/** Dataset tables a query names anywhere. */
export function tablesRead(root: Tree | undefined): string[] {
  const out = new Set<string>();
  walkTree(root, (n) => {
    if (n.type === "BASE_TABLE" && typeof n.table_name === "string") {
      const t = n.table_name.toLowerCase();
      if (DATASETS.some((d) => d.id === t)) out.add(t);
    }
  });
  return [...out];
}

/** Rows by key (the GROUP BY outputs; the whole row where those do not identify rows). */
class Keyed {
  readonly rows = new Map<string, Json[]>();
  readonly unique: boolean;
  constructor(
    r: Released,
    readonly keyIdx: number[],
  ) {
    let unique = true;
    for (const row of r.rows) {
      const k = this.keyOf(row);
      if (this.rows.has(k)) unique = false;
      this.rows.set(k, row);
    }
    this.unique = unique;
  }
  keyOf(row: Json[]): string {
    return JSON.stringify(this.keyIdx.map((i) => row[i] ?? null));
  }
}

/** One released difference: a cell, or (column -1) a row's presence. */
interface Item {
  key: string;
  column: number;
  what: string;
}

export interface Leak {
  item: string;
  /** The table(s) the target fed it through. */
  via: string;
  /** People (target included) whose removal changes it. */
  feeders: number;
}

export interface Judgement {
  /** Released differences between D and the variants. */
  differences: number;
  leaks: Leak[];
  /** Released rows that differ from what the contract's SQL computes on the same data. */
  mismatches: string[];
  /** Ablation runs made. */
  ablations: number;
}

/** People removed together in one ablation run while looking for k influential ones. */
const BLOCK = 6;

/**
 * Compares the releases of one query on D, D' and "changed", and counts by ablation (in the plain
 * instance) who feeds each difference, on each side that holds the target (D, and "changed" for
 * its own differences). `sql` is the contract's SQL as signed.
 *
 * For a difference the target feeds through a table (removing the target's rows of that table
 * changes it), the judge looks for k - 1 disjoint blocks of other people of that table whose
 * removal also changes it; where it cannot find them, it counts single people exactly (every
 * person of the table, one at a time). The difference is a LEAK when fewer than k people feed it.
 * Tables are tried one at a time (k holds per table), and together for differences no single
 * table's removal explains.
 */
export async function judgeReleases(
  plain: Plain,
  sql: string,
  parameters: Parameter[],
  params: Record<string, unknown>,
  released: Record<Variant, Released>,
  k: number,
): Promise<Judgement> {
  const root = await plain.parse(sql);
  const columns = released.D.columns;
  const judgement: Judgement = { differences: 0, leaks: [], mismatches: [], ablations: 0 };
  const raw: Partial<Record<Variant, Released>> = {};
  for (const v of VARIANTS) {
    await plain.use(v);
    raw[v] = await plain.outcome(sql, parameters, params);
  }
  let keyIdx = keyColumns(root, columns).map((c) => columns.indexOf(c));
  if (VARIANTS.some((v) => !new Keyed(raw[v]!, keyIdx).unique)) keyIdx = columns.map((_, i) => i);
  const rel = {} as Record<Variant, Keyed>;
  const base = {} as Record<Variant, Keyed>;
  for (const v of VARIANTS) {
    rel[v] = new Keyed(released[v], keyIdx);
    base[v] = new Keyed(raw[v]!, keyIdx);
    // What the enclave released must be what the signed SQL computes on the same data.
    for (const [key, row] of rel[v].rows) {
      const r = base[v].rows.get(key);
      if (!r || row.some((c, i) => !sameCell(c, r[i]))) {
        judgement.mismatches.push(`${v}: released ${JSON.stringify(row)} ≠ the SQL's ${JSON.stringify(r)}`);
      }
    }
  }

  // Differences, on the side(s) where the target is: D for both comparisons, "changed" for its own.
  const sides: Record<"D" | "changed", Map<string, Item>> = { D: new Map(), changed: new Map() };
  const add = (side: "D" | "changed", key: string, column: number, what: string) => {
    const id = `${key}#${column}`;
    if (!sides[side].has(id)) sides[side].set(id, { key, column, what });
  };
  for (const v of ["minus", "changed"] as const) {
    const other = rel[v];
    for (const key of new Set([...rel.D.rows.keys(), ...other.rows.keys()])) {
      const a = rel.D.rows.get(key);
      const b = other.rows.get(key);
      const onSides = v === "changed" ? (["D", "changed"] as const) : (["D"] as const);
      if (a && b) {
        a.forEach((c, i) => {
          if (sameCell(c, b[i])) return;
          judgement.differences += 1;
          for (const s of onSides) add(s, key, i, `${columns[i]} of ${key} (D vs ${v}, on ${s})`);
        });
      } else {
        judgement.differences += 1;
        for (const s of onSides) add(s, key, -1, `presence of ${key} (D vs ${v}, on ${s})`);
        const row = a ?? b!;
        row.forEach((_, i) => {
          for (const s of onSides) add(s, key, i, `${columns[i]} of ${key} (in one of D, ${v}; on ${s})`);
        });
      }
    }
  }

  const read = tablesRead(root);
  for (const side of ["D", "changed"] as const) {
    const items = [...sides[side].values()];
    if (items.length === 0) continue;
    await plain.use(side);
    const start = base[side];
    const changedBy = (it: Item, out: Keyed): boolean => {
      const a = start.rows.get(it.key);
      const b = out.rows.get(it.key);
      if (it.column < 0) return Boolean(a) !== Boolean(b);
      if (!a) return false;
      return !b || !sameCell(a[it.column], b[it.column]);
    };
    const ablate = async (people: string[], tables: string[]): Promise<Keyed> => {
      await plain.exclude(people, tables);
      judgement.ablations += 1;
      return new Keyed(await plain.outcome(sql, parameters, params), keyIdx);
    };
    const explained = new Set<Item>();
    const modes: string[][] = read.map((t) => [t]);
    if (read.length > 1) modes.push(read);
    for (const tables of modes) {
      const together = tables.length > 1;
      const byTarget = await ablate([TARGET.id], tables);
      const watched = items.filter((it) => !(together && explained.has(it)) && changedBy(it, byTarget));
      if (watched.length === 0) continue;
      for (const it of watched) explained.add(it);
      const others = (await plain.people(side, tables)).filter((p) => p !== TARGET.id);
      const count = new Map(watched.map((it) => [it, 1]));
      const suspects: string[] = [];
      for (let i = 0; i < others.length && watched.some((it) => count.get(it)! < k); i += BLOCK) {
        const block = others.slice(i, i + BLOCK);
        const out = await ablate(block, tables);
        let any = false;
        for (const it of watched) {
          if (!changedBy(it, out)) continue;
          count.set(it, count.get(it)! + 1);
          any = true;
        }
        if (any) suspects.push(...block);
      }
      const short = watched.filter((it) => count.get(it)! < k);
      if (short.length === 0) continue;
      // Exact count, one person at a time, among the blocks that changed something (a person
      // whose block changed nothing is counted out: that can only report more leaks, never fewer).
      const exact = new Map(short.map((it) => [it, 1]));
      for (const person of suspects) {
        const out = await ablate([person], tables);
        for (const it of short) if (changedBy(it, out)) exact.set(it, exact.get(it)! + 1);
      }
      for (const it of short) {
        const n = exact.get(it)!;
        if (n < k) judgement.leaks.push({ item: it.what, via: tables.join("+"), feeders: n });
      }
    }
  }
  await plain.use("D");
  return judgement;
}

/**
 * A run that fails on one variant and succeeds on another is an oracle on the data. Who decides
 * it is counted like a presence: people (of every table the query reads at once) whose removal
 * flips whether the signed SQL fails on `side`, in the plain instance. A failure the SQL does not
 * reproduce counts as decided by nobody, i.e. a leak.
 */
export async function judgeStatus(
  plain: Plain,
  sql: string,
  parameters: Parameter[],
  params: Record<string, unknown>,
  side: "D" | "changed",
  k: number,
): Promise<Leak[]> {
  const root = await plain.parse(sql);
  const tables = tablesRead(root);
  await plain.use(side);
  const fails = async (people: string[]): Promise<boolean> => {
    await plain.exclude(people, tables);
    return Boolean((await plain.outcome(sql, parameters, params)).failed);
  };
  const item = `whether the run fails (on ${side})`;
  try {
    const base = await fails([]);
    if ((await fails([TARGET.id])) === base)
      return [{ item: `${item}: not what the SQL does`, via: "run", feeders: 0 }];
    const others = (await plain.people(side, tables)).filter((p) => p !== TARGET.id);
    let count = 1;
    const suspects: string[] = [];
    for (let i = 0; i < others.length && count < k; i += BLOCK) {
      const block = others.slice(i, i + BLOCK);
      if ((await fails(block)) !== base) {
        count += 1;
        suspects.push(...block);
      }
    }
    if (count >= k) return [];
    let exact = 1;
    for (const person of suspects) if ((await fails([person])) !== base) exact += 1;
    return exact < k ? [{ item, via: tables.join("+"), feeders: exact }] : [];
  } finally {
    await plain.use("D");
  }
}

// ---------------------------------------------------------------------------------------------
// Differential privacy: the exact pre-noise rows against the calibrated sensitivities

/** L1 sensitivity per noised column, from the policy (docs/DIFFERENTIAL-PRIVACY.md), in the column's units. */
function dpSensitivity(kind: string, dp: DpPolicy, decimals: number): number {
  const m = dp.maxRowsPerIdentity ?? 1;
  if (kind === "count-distinct") return dp.groups === "single" ? 1 : m;
  if (kind === "count") return m;
  const step = 10 ** -decimals;
  const lower = Math.ceil((dp.clamp?.lower ?? 0) / step - 1e-9) * step;
  const upper = Math.floor((dp.clamp?.upper ?? 0) / step + 1e-9) * step;
  return m * Math.max(Math.abs(lower), Math.abs(upper));
}

export interface DpJudgement {
  differences: number;
  leaks: Leak[];
}

/**
 * For each noised column (and the hidden threshold count), the L1 change between D and a variant
 * over the released groups must be at most the sensitivity the noise is scaled to; in "private"
 * groups the threshold count of each group may change by at most one person's share, in at most
 * maxRowsPerIdentity groups.
 */
export function judgeDp(results: Record<Variant, QueryResult>, dp: DpPolicy): DpJudgement {
  const spec = results.D.dp!.spec;
  const columns = [...results.D.columns, ...results.D.dp!.hiddenColumns].map((c) => c.name);
  const noised = spec.aggregateColumns.filter((c) => c.kind !== "avg");
  const aggregateNames = new Set(spec.aggregateColumns.map((c) => c.name));
  const keyIdx = columns.flatMap((c, i) => (aggregateNames.has(c) ? [] : [i]));
  const inDomain = (row: Json[]): boolean =>
    dp.groups !== "public" ||
    (dp.domain ?? []).every((d) => {
      const i = columns.indexOf(d.column);
      return d.values.some((v) => sameCell(row[i], v as Json));
    });
  const keyed = (r: QueryResult) =>
    new Map(
      (r.rows as Json[][])
        .filter(inDomain)
        .map((row) => [JSON.stringify(keyIdx.map((i) => row[i])), row] as const),
    );
  const d = keyed(results.D);
  const out: DpJudgement = { differences: 0, leaks: [] };
  const m = dp.maxRowsPerIdentity ?? 1;
  const threshold = results.D.dp!.spec.threshold?.column;
  for (const v of ["minus", "changed"] as const) {
    const o = keyed(results[v]);
    const keys = new Set([...d.keys(), ...o.keys()]);
    for (const c of noised) {
      const i = columns.indexOf(c.name);
      const decimals = dp.columns.find((x) => x.name === c.name && x.kind === "sum");
      const sens = dpSensitivity(
        c.kind,
        dp,
        decimals && "decimals" in decimals ? (decimals.decimals ?? 0) : 0,
      );
      let l1 = 0;
      let groups = 0;
      let worst = 0;
      for (const key of keys) {
        const a = num(d.get(key)?.[i] ?? 0) ?? 0;
        const b = num(o.get(key)?.[i] ?? 0) ?? 0;
        const delta = Math.abs(a - b);
        if (delta > 0) {
          groups += 1;
          out.differences += 1;
        }
        l1 += delta;
        worst = Math.max(worst, delta);
      }
      // The "changed" variant is two neighbours away (remove the target, add it back changed).
      const allowed = (v === "changed" ? 2 : 1) * sens + 1e-6;
      if (l1 > allowed)
        out.leaks.push({
          item: `${c.name}: L1 ${l1} > sensitivity ${sens} (D vs ${v})`,
          via: "dp",
          feeders: 1,
        });
      if (dp.groups === "private" && c.name === threshold) {
        const share = c.kind === "count-distinct" ? 1 : m;
        if (worst > (v === "changed" ? 2 : 1) * share || groups > (v === "changed" ? 2 : 1) * m) {
          out.leaks.push({
            item: `threshold ${c.name}: ${groups} groups, up to ${worst} (D vs ${v})`,
            via: "dp",
            feeders: 1,
          });
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Attack cases and the lab that runs them

export interface AttackCase {
  name: string;
  /** The attack class (reported per class). */
  cls: string;
  sql: string;
  kind?: AnalysisRuleKind;
  parameters?: Parameter[];
  /** The attacker's parameter choices after everyone signed; each is judged. */
  runs?: Record<string, unknown>[];
  allowedColumns?: string[];
  description?: string;
  k?: number;
  dp?: DpPolicy;
  /** Changes the datasets' analysis rules (what their owners allow). */
  datasets?: (ds: Dataset[]) => Dataset[];
  /**
   * "refused": must be refused. "admitted": must be admitted (and leak-free). "either": refused or
   * admitted without a leak. "owner-risk": the owners opted into a one-person aggregate (min/max/
   * median are shown to them as warnings): admitted, and the judge must see the leak.
   */
  expect: "refused" | "admitted" | "either" | "owner-risk";
}

export type Outcome = "refused" | "admitted-no-leak" | "LEAK" | "MISMATCH" | "crash";

export interface CaseResult {
  name: string;
  cls: string;
  outcome: Outcome;
  /** Refusal reason (with the stage and code), run refusal codes, or what leaked. */
  detail: string;
  leaks: Leak[];
  runCodes: string[];
  differences: number;
  /** Ablation runs the judge made. */
  ablations?: number;
}

export interface Lab {
  parties: Contract["parties"];
  engines: Record<Variant, SqlEngine>;
  plain: Plain;
  close(): void;
}

export async function openLab(seed = 7, people = 200): Promise<Lab> {
  const pops = variants(population(seed, people));
  const engines = Object.fromEntries(
    await Promise.all(VARIANTS.map(async (v) => [v, await loadEngine(pops[v])] as const)),
  ) as Record<Variant, SqlEngine>;
  const plain = await Plain.open(pops);
  const parties = makeContract([await makeParty("advertiser"), await makeParty("publisher")]).parties;
  return {
    parties,
    engines,
    plain,
    close() {
      for (const e of Object.values(engines)) e.close();
      plain.close();
    },
  };
}

/** Output names of a SELECT (aliases, or a bare column's name), as the attacker would list them. */
async function outputNames(plain: Plain, sql: string): Promise<string[]> {
  const root = await plain.parse(sql).catch(() => undefined);
  const items = root && Array.isArray(root.select_list) ? (root.select_list as Tree[]) : [];
  const names = items.map((i) =>
    typeof i.alias === "string" && i.alias !== ""
      ? i.alias
      : Array.isArray(i.column_names)
        ? String(i.column_names[i.column_names.length - 1])
        : "x",
  );
  return names.length ? names : ["x"];
}

let serial = 0;

export async function caseContract(lab: Lab, c: AttackCase): Promise<Contract> {
  serial += 1;
  const kind = c.kind ?? "aggregation";
  const query: ApprovedQuery = {
    id: `attack-${serial}`,
    ...(c.description !== undefined ? { description: c.description } : {}),
    sql: c.sql,
    parameters: c.parameters ?? [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: {
      kind,
      minDistinctIdentities: c.k ?? K,
      allowedColumns: c.allowedColumns ?? (await outputNames(lab.plain, c.sql)),
      ...(c.dp ? { dp: c.dp } : {}),
    },
  };
  const datasets = (c.datasets ?? ((d) => d))(structuredClone(DATASETS)).map((d, i) => ({
    ...d,
    owner: lab.parties[i]!.id,
  }));
  return { version: 1, id: "judge-room", parties: lab.parties, datasets, queries: [query] };
}

const codeOf = (e: unknown): string => (e as { code?: string }).code ?? "?";
const reasonOf = (e: unknown): string => (e as { reason?: string }).reason ?? (e as Error).message;

/** Puts the attack in a contract, checks it as the enclave would, runs it if admitted, judges. */
export async function judgeCase(lab: Lab, c: AttackCase): Promise<CaseResult> {
  const result: CaseResult = {
    name: c.name,
    cls: c.cls,
    outcome: "admitted-no-leak",
    detail: "",
    leaks: [],
    runCodes: [],
    differences: 0,
  };
  const crash = (stage: string, e: unknown): CaseResult => ({
    ...result,
    outcome: "crash",
    detail: `${stage}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
  });
  let contract: Contract;
  try {
    contract = await caseContract(lab, c);
  } catch (e) {
    return crash("contract", e);
  }
  try {
    validateContract(contract);
    await checkContractQueries(contract);
  } catch (e) {
    if (!isCleanroomError(e) || codeOf(e) === "?") return crash("check", e);
    return { ...result, outcome: "refused", detail: `${codeOf(e)}: ${reasonOf(e)}` };
  }
  const query = contract.queries[0]!;
  const runs = c.runs ?? [{}];
  for (const params of runs) {
    const results = {} as Record<Variant, QueryResult>;
    const failed = new Map<Variant, string>();
    for (const v of VARIANTS) {
      const engine = lab.engines[v];
      try {
        for (const d of contract.datasets) engine.datasets.set(d.id, d);
        results[v] = await runApprovedQuery(engine, query, params);
      } catch (e) {
        if (!isCleanroomError(e) || codeOf(e) === "?")
          return crash(`run ${JSON.stringify(params)} on ${v}`, e);
        failed.set(v, codeOf(e));
      } finally {
        for (const d of DATASETS) engine.datasets.set(d.id, d);
      }
    }
    if (failed.size > 0) {
      result.runCodes.push(...new Set(failed.values()));
      // Whether the run fails depends on the data: who decides it?
      if (failed.size < VARIANTS.length) {
        const sides = (["D", "changed"] as const).filter(
          (v) =>
            failed.has(v) !== failed.has("minus") || (v === "changed" && failed.has("D") !== failed.has(v)),
        );
        for (const side of sides) {
          const j = await judgeStatus(
            lab.plain,
            c.sql,
            query.parameters,
            params,
            side,
            query.policy.minDistinctIdentities,
          );
          result.leaks.push(...j.map((l) => ({ ...l, item: `${JSON.stringify(params)} ${l.item}` })));
        }
      }
      continue;
    }
    if (results.D.dp) {
      const j = judgeDp(results, query.policy.dp!);
      result.differences += j.differences;
      result.leaks.push(...j.leaks);
      continue;
    }
    const released = Object.fromEntries(
      VARIANTS.map((v) => [v, { columns: results[v].columns.map((x) => x.name), rows: results[v].rows }]),
    ) as Record<Variant, Released>;
    try {
      const j = await judgeReleases(
        lab.plain,
        c.sql,
        query.parameters,
        params,
        released,
        query.policy.minDistinctIdentities,
      );
      result.differences += j.differences;
      result.ablations = (result.ablations ?? 0) + j.ablations;
      result.leaks.push(...j.leaks.map((l) => ({ ...l, item: `${JSON.stringify(params)} ${l.item}` })));
      if (j.mismatches.length) {
        return { ...result, outcome: "MISMATCH", detail: j.mismatches.slice(0, 3).join("; ") };
      }
    } catch (e) {
      return crash("judge", e);
    }
  }
  if (result.leaks.length) {
    result.outcome = "LEAK";
    result.detail = result.leaks
      .slice(0, 4)
      .map((l) => `${l.item} via ${l.via}: ${l.feeders} feeder(s)`)
      .join("; ");
  } else {
    result.detail = result.runCodes.length
      ? `runs refused: ${result.runCodes.join(",")}`
      : `${result.differences} differences`;
  }
  return result;
}

/** Whether a case's result is what the case demands. */
export function verdictOk(c: AttackCase, r: CaseResult): boolean {
  switch (c.expect) {
    case "refused":
      return r.outcome === "refused";
    case "admitted":
      return r.outcome === "admitted-no-leak";
    case "either":
      return r.outcome === "refused" || r.outcome === "admitted-no-leak";
    case "owner-risk":
      return r.outcome === "LEAK";
  }
}
