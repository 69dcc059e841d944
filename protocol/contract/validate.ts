/**
 * Structural validation of an untrusted contract document. Every field is checked against its
 * pattern and cross-references (owners, runners, recipients, identity columns) are resolved;
 * unknown fields are refused at every level so that no two parties can read different meanings
 * into the same signed bytes. The SQL text is only length-checked here: the enclave parses it.
 */
import { DATASET_ID, isPlainObject, keysProblem, PARTY_ID } from "../jose/lib/shape.js";
import { HIDDEN_PREFIX } from "../rules/tree.js";
import { ContractError } from "./errors.js";
import type {
  ApprovedQuery,
  Column,
  ColumnType,
  Contract,
  Dataset,
  DatasetAnalysis,
  DpColumn,
  DpDomain,
  DpGroups,
  DpPolicy,
  Measure,
  MeasureAggregate,
  OutputPolicy,
  Parameter,
  ParameterType,
  Party,
} from "./types.js";
import { MAX_INVALID_IDENTITY_SHARE, MIN_K } from "./types.js";

/** Limits keep a hostile contract from exhausting the enclave or a verifier. */
export const CONTRACT_LIMITS = {
  jsonBytes: 1 << 20,
  parties: 32,
  datasets: 64,
  columns: 1024,
  queries: 256,
  parameters: 64,
  nameChars: 128,
  descriptionChars: 2048,
  sqlChars: 65536,
} as const;

const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const B64URL_32 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/; // 32 bytes, canonical final character
/** "age1" + bech32 data (32-byte key, 52 chars) + checksum (6 chars), lowercase only. */
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const CONTROL = /\p{Cc}/u;
/**
 * Invisible format characters: bidirectional overrides and isolates, zero-width joiners and
 * spaces, byte-order marks ("Trojan Source"). They make a reviewer read other text than the
 * engine runs, so no string of a contract may hold one.
 */
const INVISIBLE = /[\p{Cf}\u2028\u2029]/u;
/** SQL may span lines; any other control character is refused. */
const SQL_CONTROL = /[^\P{Cc}\t\n\r]/u;

const COLUMN_TYPES: readonly ColumnType[] = [
  "VARCHAR",
  "BIGINT",
  "INTEGER",
  "DOUBLE",
  "BOOLEAN",
  "DATE",
  "TIMESTAMP",
];
const PARAMETER_TYPES: readonly ParameterType[] = [
  "VARCHAR",
  "BIGINT",
  "DOUBLE",
  "BOOLEAN",
  "DATE",
  "TIMESTAMP",
];

function fail(path: string, reason: string): never {
  throw new ContractError(path, reason);
}

function obj(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []) {
  if (!isPlainObject(v)) fail(path, "not an object");
  const problem = keysProblem(v, required, optional);
  if (problem) fail(path, problem);
  return v;
}

function arr(v: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) fail(path, "not an array");
  if (v.length < min) fail(path, min === 1 ? "empty" : "too few elements");
  if (v.length > max) fail(path, "too many elements");
  return v;
}

function str(v: unknown, path: string, max: number): string {
  if (typeof v !== "string") fail(path, "not a string");
  if (v.length === 0) fail(path, "empty");
  if (v.length > max) fail(path, "too long");
  if (INVISIBLE.test(v)) fail(path, "invisible or bidirectional-override character");
  return v;
}

function text(v: unknown, path: string, max: number): string {
  const s = str(v, path, max);
  if (CONTROL.test(s)) fail(path, "control character");
  return s;
}

function matching(v: unknown, path: string, re: RegExp, what: string): string {
  if (typeof v !== "string") fail(path, "not a string");
  if (INVISIBLE.test(v)) fail(path, "invisible or bidirectional-override character");
  if (!re.test(v)) fail(path, `not a valid ${what}`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) fail(path, "unsupported value");
  return v as T;
}

function positiveInteger(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(path, "not an integer");
  if (v < 1) fail(path, "must be at least 1");
  return v;
}

function positiveFinite(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(path, "not a finite number");
  if (v <= 0) fail(path, "must be greater than 0");
  return v;
}

function finite(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(path, "not a finite number");
  return v;
}

/** Refuses a second occurrence of a key, reporting the path of the duplicate. */
function unique(keys: string[], path: (i: number) => string, fold = false): void {
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    const key = fold ? k.toLowerCase() : k;
    if (seen.has(key)) fail(path(i), "duplicate");
    seen.add(key);
  });
}

function signingKey(v: unknown, path: string): JsonWebKey {
  // A private key in a shared document is a leak, not just a format error: say so first.
  if (isPlainObject(v) && Object.hasOwn(v, "d")) fail(path, "private key material");
  const o = obj(v, path, ["kty", "crv", "x", "y"], ["alg", "use", "kid"]);
  if (o.kty !== "EC") fail(`${path}.kty`, "must be EC");
  if (o.crv !== "P-256") fail(`${path}.crv`, "must be P-256");
  const jwk: JsonWebKey = {
    kty: "EC",
    crv: "P-256",
    x: matching(o.x, `${path}.x`, B64URL_32, "P-256 coordinate"),
    y: matching(o.y, `${path}.y`, B64URL_32, "P-256 coordinate"),
  };
  if (o.alg !== undefined && o.alg !== "ES256") fail(`${path}.alg`, "must be ES256");
  if (o.use !== undefined && o.use !== "sig") fail(`${path}.use`, "must be sig");
  if (o.alg !== undefined) jwk.alg = "ES256";
  if (o.use !== undefined) jwk.use = "sig";
  if (o.kid !== undefined) (jwk as JsonWebKey & { kid: string }).kid = text(o.kid, `${path}.kid`, 128);
  return jwk;
}

function party(v: unknown, path: string): Party {
  const o = obj(v, path, ["id", "name", "signingKey", "ageRecipient"]);
  return {
    id: matching(o.id, `${path}.id`, PARTY_ID, "party id"),
    name: text(o.name, `${path}.name`, CONTRACT_LIMITS.nameChars),
    signingKey: signingKey(o.signingKey, `${path}.signingKey`),
    ageRecipient: matching(o.ageRecipient, `${path}.ageRecipient`, AGE_RECIPIENT, "age recipient"),
  };
}

function column(v: unknown, path: string): Column {
  const o = obj(v, path, ["name", "type"]);
  return {
    name: matching(o.name, `${path}.name`, COLUMN_NAME, "column name"),
    type: oneOf(o.type, `${path}.type`, COLUMN_TYPES),
  };
}

const MEASURE_AGGREGATES: readonly MeasureAggregate[] = ["count", "sum", "avg", "min", "max", "median"];
/** Aggregates that compute arithmetic on the values: the column must be numeric. */
const NUMERIC_AGGREGATES = new Set<MeasureAggregate>(["sum", "avg", "median"]);
const NUMERIC_TYPES = new Set<ColumnType>(["BIGINT", "INTEGER", "DOUBLE"]);

function columnNames(v: unknown, path: string, declared: Map<string, Column>, identity: string): string[] {
  const names = arr(v, path, 0, CONTRACT_LIMITS.columns).map((c, i) => {
    const name = matching(c, `${path}[${i}]`, COLUMN_NAME, "column name");
    if (!declared.has(name)) fail(`${path}[${i}]`, "not a column of the dataset");
    if (name === identity) fail(`${path}[${i}]`, "the identity column takes no other role");
    return name;
  });
  unique(names, (i) => `${path}[${i}]`);
  return names;
}

function measure(v: unknown, path: string, declared: Map<string, Column>, identity: string): Measure {
  const o = obj(v, path, ["column", "aggregates"]);
  const [column] = columnNames([o.column], `${path}.column`, declared, identity);
  const aggregates = arr(o.aggregates, `${path}.aggregates`, 1, MEASURE_AGGREGATES.length).map((a, i) =>
    oneOf(a, `${path}.aggregates[${i}]`, MEASURE_AGGREGATES),
  );
  unique(aggregates, (i) => `${path}.aggregates[${i}]`);
  const type = declared.get(column!)!.type;
  aggregates.forEach((a, i) => {
    if (NUMERIC_AGGREGATES.has(a) && !NUMERIC_TYPES.has(type))
      fail(`${path}.aggregates[${i}]`, "needs a numeric column");
  });
  return { column: column!, aggregates };
}

function analysis(v: unknown, path: string, columns: Column[], identity: string): DatasetAnalysis {
  const o = obj(v, path, ["joinColumns", "dimensions", "measures"]);
  const declared = new Map(columns.map((c) => [c.name, c]));
  const joinColumns = columnNames(o.joinColumns, `${path}.joinColumns`, declared, identity);
  const dimensions = columnNames(o.dimensions, `${path}.dimensions`, declared, identity);
  const measures = arr(o.measures, `${path}.measures`, 0, CONTRACT_LIMITS.columns).map((m, i) =>
    measure(m, `${path}.measures[${i}]`, declared, identity),
  );
  unique(
    measures.map((m) => m.column),
    (i) => `${path}.measures[${i}].column`,
  );
  // A measure is only ever aggregated: as a dimension or join key its raw values would be output.
  const exposed = new Set([...joinColumns, ...dimensions]);
  measures.forEach((m, i) => {
    if (exposed.has(m.column)) fail(`${path}.measures[${i}].column`, "already a dimension or join column");
  });
  return { joinColumns, dimensions, measures };
}

function dataset(v: unknown, path: string, parties: Set<string>): Dataset {
  const o = obj(
    v,
    path,
    ["id", "owner", "format", "columns", "identityColumn", "analysis"],
    ["identityFormat", "maxInvalidIdentityShare"],
  );
  const id = matching(o.id, `${path}.id`, DATASET_ID, "dataset id");
  const owner = matching(o.owner, `${path}.owner`, PARTY_ID, "party id");
  if (!parties.has(owner)) fail(`${path}.owner`, "unknown party");
  const format = oneOf(o.format, `${path}.format`, ["csv", "parquet"] as const);
  const columns = arr(o.columns, `${path}.columns`, 1, CONTRACT_LIMITS.columns).map((c, i) =>
    column(c, `${path}.columns[${i}]`),
  );
  // DuckDB identifiers are case-insensitive, so "Email" and "email" would be one column.
  unique(
    columns.map((c) => c.name),
    (i) => `${path}.columns[${i}].name`,
    true,
  );
  const identityColumn = matching(o.identityColumn, `${path}.identityColumn`, COLUMN_NAME, "column name");
  if (!columns.some((c) => c.name === identityColumn))
    fail(`${path}.identityColumn`, "not a column of the dataset");
  const out: Dataset = {
    id,
    owner,
    format,
    columns,
    identityColumn,
    analysis: analysis(o.analysis, `${path}.analysis`, columns, identityColumn),
  };
  if (o.identityFormat !== undefined) {
    out.identityFormat = oneOf(o.identityFormat, `${path}.identityFormat`, ["sha256-hex", "any"] as const);
  }
  if (o.maxInvalidIdentityShare !== undefined) {
    const where = `${path}.maxInvalidIdentityShare`;
    // Only a declared format makes an identity invalid; elsewhere the field would do nothing.
    if (out.identityFormat !== "sha256-hex") fail(where, 'only with identityFormat "sha256-hex"');
    const share = finite(o.maxInvalidIdentityShare, where);
    if (share < 0 || share > MAX_INVALID_IDENTITY_SHARE) {
      fail(where, `must be from 0 to ${MAX_INVALID_IDENTITY_SHARE}`);
    }
    out.maxInvalidIdentityShare = share;
  }
  return out;
}

/** The enclave names its own parameters, columns and aliases with the hidden prefix. */
function unreserved(name: string, path: string): string {
  if (name.toLowerCase().startsWith(HIDDEN_PREFIX))
    fail(path, `names starting with ${HIDDEN_PREFIX} are reserved`);
  return name;
}

function parameter(v: unknown, path: string): Parameter {
  const o = obj(v, path, ["name", "type"]);
  return {
    name: unreserved(matching(o.name, `${path}.name`, PARAMETER_NAME, "parameter name"), `${path}.name`),
    type: oneOf(o.type, `${path}.type`, PARAMETER_TYPES),
  };
}

function partyList(v: unknown, path: string, parties: Set<string>): string[] {
  const ids = arr(v, path, 1, CONTRACT_LIMITS.parties).map((p, i) => {
    const id = matching(p, `${path}[${i}]`, PARTY_ID, "party id");
    if (!parties.has(id)) fail(`${path}[${i}]`, "unknown party");
    return id;
  });
  unique(ids, (i) => `${path}[${i}]`);
  return ids;
}

/** Epsilon is accounted in micro-epsilon: a smaller one would round to nothing. */
const MIN_EPSILON = 1e-6;
const DP_GROUPS: readonly DpGroups[] = ["single", "public", "private"];
const DP_KINDS: readonly DpColumn["kind"][] = ["count", "count-distinct", "sum", "avg"];
/** Fixed-point places a sum may be computed in. */
const MAX_SUM_DECIMALS = 6;

function dpColumn(v: unknown, path: string, allowed: Set<string>): DpColumn {
  const base = obj(v, path, ["name", "kind"], ["decimals", "sum", "count"]);
  const name = matching(base.name, `${path}.name`, COLUMN_NAME, "column name");
  if (!allowed.has(name)) fail(`${path}.name`, "not an allowed column");
  const kind = oneOf(base.kind, `${path}.kind`, DP_KINDS);
  if (kind === "avg") {
    const o = obj(v, path, ["name", "kind", "sum", "count"]);
    const sum = matching(o.sum, `${path}.sum`, COLUMN_NAME, "column name");
    const count = matching(o.count, `${path}.count`, COLUMN_NAME, "column name");
    return { name, kind, sum, count };
  }
  if (kind === "sum") {
    const o = obj(v, path, ["name", "kind"], ["decimals"]);
    if (o.decimals === undefined) return { name, kind };
    if (typeof o.decimals !== "number" || !Number.isSafeInteger(o.decimals)) {
      fail(`${path}.decimals`, "not an integer");
    }
    if (o.decimals < 0 || o.decimals > MAX_SUM_DECIMALS) fail(`${path}.decimals`, "out of range");
    return { name, kind, decimals: o.decimals };
  }
  obj(v, path, ["name", "kind"]);
  return { name, kind };
}

function dp(v: unknown, path: string, allowedColumns: string[]): DpPolicy {
  const o = obj(
    v,
    path,
    ["epsilon", "budget", "groups", "columns", "maxRowsPerIdentity"],
    ["clamp", "delta", "domain"],
  );
  const epsilon = positiveFinite(o.epsilon, `${path}.epsilon`);
  if (epsilon < MIN_EPSILON) fail(`${path}.epsilon`, "below 1e-6");
  const budget = positiveFinite(o.budget, `${path}.budget`);
  if (epsilon > budget) fail(`${path}.epsilon`, "exceeds budget");
  const groups = oneOf(o.groups, `${path}.groups`, DP_GROUPS);
  const allowed = new Set(allowedColumns);
  const columns = arr(o.columns, `${path}.columns`, 1, CONTRACT_LIMITS.columns).map((c, i) =>
    dpColumn(c, `${path}.columns[${i}]`, allowed),
  );
  unique(
    columns.map((c) => c.name),
    (i) => `${path}.columns[${i}].name`,
    true,
  );
  const kindOf = new Map(columns.map((c) => [c.name, c.kind]));
  columns.forEach((c, i) => {
    if (c.kind !== "avg") return;
    if (kindOf.get(c.sum) !== "sum") fail(`${path}.columns[${i}].sum`, "not a sum column of this policy");
    if (kindOf.get(c.count) !== "count")
      fail(`${path}.columns[${i}].count`, "not a count column of this policy");
  });
  const out: DpPolicy = {
    epsilon,
    budget,
    groups,
    columns,
    maxRowsPerIdentity: positiveInteger(o.maxRowsPerIdentity, `${path}.maxRowsPerIdentity`),
  };
  const summed = columns.some((c) => c.kind === "sum");
  if (o.clamp === undefined) {
    if (summed) fail(`${path}.clamp`, "required for sum columns");
  } else {
    if (!summed) fail(`${path}.clamp`, "only with a sum column");
    const c = obj(o.clamp, `${path}.clamp`, ["lower", "upper"]);
    const lower = finite(c.lower, `${path}.clamp.lower`);
    const upper = finite(c.upper, `${path}.clamp.upper`);
    if (!(lower < upper)) fail(`${path}.clamp`, "lower must be below upper");
    out.clamp = { lower, upper };
  }
  if (o.delta !== undefined) {
    const delta = positiveFinite(o.delta, `${path}.delta`);
    if (delta >= 1) fail(`${path}.delta`, "must be below 1");
    out.delta = delta;
  }
  if (groups === "public") {
    out.domain = domain(o.domain, `${path}.domain`, allowed, new Set(columns.map((c) => c.name)));
  } else if (o.domain !== undefined) {
    fail(`${path}.domain`, 'only with groups "public"');
  }
  return out;
}

/** Rows a "public" domain may produce (the product of its value lists). */
export const MAX_DOMAIN_GROUPS = 10_000;

function domainValue(v: unknown, path: string): string | number | boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return finite(v, path);
  return text(v, path, CONTRACT_LIMITS.nameChars);
}

function domain(v: unknown, path: string, allowed: Set<string>, noised: Set<string>): DpDomain[] {
  if (v === undefined) fail(path, 'required for groups "public"');
  const out = arr(v, path, 1, CONTRACT_LIMITS.columns).map((d, i): DpDomain => {
    const o = obj(d, `${path}[${i}]`, ["column", "values"]);
    const column = matching(o.column, `${path}[${i}].column`, COLUMN_NAME, "column name");
    if (!allowed.has(column)) fail(`${path}[${i}].column`, "not an allowed column");
    if (noised.has(column)) fail(`${path}[${i}].column`, "a noised column is not a group key");
    const values = arr(o.values, `${path}[${i}].values`, 1, MAX_DOMAIN_GROUPS).map((x, j) =>
      domainValue(x, `${path}[${i}].values[${j}]`),
    );
    unique(
      values.map((x) => JSON.stringify(x)),
      (j) => `${path}[${i}].values[${j}]`,
    );
    return { column, values };
  });
  unique(
    out.map((d) => d.column),
    (i) => `${path}[${i}].column`,
  );
  if (out.reduce((n, d) => n * d.values.length, 1) > MAX_DOMAIN_GROUPS) fail(path, "too many groups");
  return out;
}

function policy(v: unknown, path: string): OutputPolicy {
  const o = obj(
    v,
    path,
    ["kind", "minDistinctIdentities", "allowedColumns"],
    ["maxRuns", "dp", "differencingGuard"],
  );
  const kind = oneOf(o.kind, `${path}.kind`, ["aggregation", "custom"] as const);
  const minDistinctIdentities = positiveInteger(o.minDistinctIdentities, `${path}.minDistinctIdentities`);
  if (minDistinctIdentities < MIN_K) fail(`${path}.minDistinctIdentities`, `below the floor of ${MIN_K}`);
  const allowedColumns = arr(o.allowedColumns, `${path}.allowedColumns`, 1, CONTRACT_LIMITS.columns).map(
    (c, i) => matching(c, `${path}.allowedColumns[${i}]`, COLUMN_NAME, "column name"),
  );
  unique(allowedColumns, (i) => `${path}.allowedColumns[${i}]`, true);
  const out: OutputPolicy = { kind, minDistinctIdentities, allowedColumns };
  if (o.maxRuns !== undefined) out.maxRuns = positiveInteger(o.maxRuns, `${path}.maxRuns`);
  if (o.differencingGuard !== undefined) {
    if (typeof o.differencingGuard !== "boolean") fail(`${path}.differencingGuard`, "not a boolean");
    // Under the custom rule the noise and the budget are what bound differencing.
    if (kind !== "aggregation") fail(`${path}.differencingGuard`, 'only under the "aggregation" rule');
    out.differencingGuard = o.differencingGuard;
  }
  // Richer SQL is released only with noise; exact answers only through the positive grammar.
  if (kind === "custom") {
    if (o.dp === undefined) fail(`${path}.dp`, 'required under the "custom" rule');
    out.dp = dp(o.dp, `${path}.dp`, allowedColumns);
  } else if (o.dp !== undefined) {
    fail(`${path}.dp`, 'only under the "custom" rule');
  }
  return out;
}

function query(v: unknown, path: string, parties: Set<string>): ApprovedQuery {
  const o = obj(v, path, ["id", "sql", "parameters", "runners", "recipients", "policy"], ["description"]);
  const id = matching(o.id, `${path}.id`, PARTY_ID, "query id");
  const description =
    o.description === undefined
      ? undefined
      : str(o.description, `${path}.description`, CONTRACT_LIMITS.descriptionChars);
  const sql = str(o.sql, `${path}.sql`, CONTRACT_LIMITS.sqlChars);
  if (SQL_CONTROL.test(sql)) fail(`${path}.sql`, "control character");
  const parameters = arr(o.parameters, `${path}.parameters`, 0, CONTRACT_LIMITS.parameters).map((p, i) =>
    parameter(p, `${path}.parameters[${i}]`),
  );
  unique(
    parameters.map((p) => p.name),
    (i) => `${path}.parameters[${i}].name`,
    true,
  );
  const runners = partyList(o.runners, `${path}.runners`, parties);
  const recipients = partyList(o.recipients, `${path}.recipients`, parties);
  const out: ApprovedQuery = {
    id,
    sql,
    parameters,
    runners,
    recipients,
    policy: policy(o.policy, `${path}.policy`),
  };
  if (description !== undefined) out.description = description;
  return out;
}

/**
 * Validate an untrusted, already parsed JSON value as a contract. Returns a fresh copy built only
 * from validated fields; throws ContractError naming the first failing path.
 */
export function validateContract(value: unknown): Contract {
  const o = obj(value, "contract", ["version", "id", "parties", "datasets", "queries"]);
  if (o.version !== 1) fail("version", "unsupported value");
  const id = matching(o.id, "id", PARTY_ID, "contract id");
  const parties = arr(o.parties, "parties", 1, CONTRACT_LIMITS.parties).map((p, i) =>
    party(p, `parties[${i}]`),
  );
  unique(
    parties.map((p) => p.id),
    (i) => `parties[${i}].id`,
  );
  unique(
    parties.map((p) => `${p.signingKey.x}.${p.signingKey.y}`),
    (i) => `parties[${i}].signingKey`,
  );
  const partyIds = new Set(parties.map((p) => p.id));
  const datasets = arr(o.datasets, "datasets", 1, CONTRACT_LIMITS.datasets).map((d, i) =>
    dataset(d, `datasets[${i}]`, partyIds),
  );
  unique(
    datasets.map((d) => d.id),
    (i) => `datasets[${i}].id`,
  );
  const queries = arr(o.queries, "queries", 0, CONTRACT_LIMITS.queries).map((q, i) =>
    query(q, `queries[${i}]`, partyIds),
  );
  unique(
    queries.map((q) => q.id),
    (i) => `queries[${i}].id`,
  );
  return { version: 1, id, parties, datasets, queries };
}

/** Validate contract JSON text (size-limited before parsing). */
export function validateContractJson(json: string | Uint8Array): Contract {
  const bytes = typeof json === "string" ? new TextEncoder().encode(json) : json;
  if (bytes.length > CONTRACT_LIMITS.jsonBytes) fail("contract", "too large");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    fail("contract", "not valid JSON");
  }
  return validateContract(value);
}
