/**
 * Structural validation of an untrusted contract document. Every field is checked against its
 * pattern and cross-references (owners, runners, recipients, identity columns) are resolved;
 * unknown fields are refused at every level so that no two parties can read different meanings
 * into the same signed bytes. The SQL text is only length-checked here: the enclave parses it.
 */
import { DATASET_ID, isPlainObject, keysProblem, PARTY_ID } from "../jose/lib/shape.js";
import { ContractError } from "./errors.js";
import type {
  ApprovedQuery,
  Column,
  ColumnType,
  Contract,
  Dataset,
  DpColumn,
  DpGroups,
  DpPolicy,
  OutputPolicy,
  Parameter,
  ParameterType,
  Party,
} from "./types.js";

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
  return v;
}

function text(v: unknown, path: string, max: number): string {
  const s = str(v, path, max);
  if (CONTROL.test(s)) fail(path, "control character");
  return s;
}

function matching(v: unknown, path: string, re: RegExp, what: string): string {
  if (typeof v !== "string") fail(path, "not a string");
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

function dataset(v: unknown, path: string, parties: Set<string>): Dataset {
  const o = obj(v, path, ["id", "owner", "format", "columns", "identityColumn"], ["identityFormat"]);
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
  const out: Dataset = { id, owner, format, columns, identityColumn };
  if (o.identityFormat !== undefined) {
    out.identityFormat = oneOf(o.identityFormat, `${path}.identityFormat`, ["sha256-hex", "any"] as const);
  }
  return out;
}

function parameter(v: unknown, path: string): Parameter {
  const o = obj(v, path, ["name", "type"]);
  return {
    name: matching(o.name, `${path}.name`, PARAMETER_NAME, "parameter name"),
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
    ["clamp", "delta"],
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
  return out;
}

function policy(v: unknown, path: string): OutputPolicy {
  const o = obj(v, path, ["kind", "minDistinctIdentities", "allowedColumns"], ["maxRuns", "dp"]);
  const kind = oneOf(o.kind, `${path}.kind`, ["aggregate", "row-level"] as const);
  const minDistinctIdentities = positiveInteger(o.minDistinctIdentities, `${path}.minDistinctIdentities`);
  const allowedColumns = arr(
    o.allowedColumns,
    `${path}.allowedColumns`,
    kind === "aggregate" ? 1 : 0,
    CONTRACT_LIMITS.columns,
  ).map((c, i) => matching(c, `${path}.allowedColumns[${i}]`, COLUMN_NAME, "column name"));
  unique(allowedColumns, (i) => `${path}.allowedColumns[${i}]`, true);
  const out: OutputPolicy = { kind, minDistinctIdentities, allowedColumns };
  if (o.maxRuns !== undefined) out.maxRuns = positiveInteger(o.maxRuns, `${path}.maxRuns`);
  if (o.dp !== undefined) {
    // Noise over individual rows protects nothing; DP only makes sense for aggregates.
    if (kind !== "aggregate") fail(`${path}.dp`, "only for aggregate policies");
    out.dp = dp(o.dp, `${path}.dp`, allowedColumns);
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
