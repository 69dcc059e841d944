/**
 * The contract: the single document that decides what the enclave will do. Every party signs
 * the digest of its RFC 8785 canonical form; attestation evidence binds that digest.
 */

/** Column types a dataset may declare; they are DuckDB logical type names. */
export type ColumnType = "VARCHAR" | "BIGINT" | "INTEGER" | "DOUBLE" | "BOOLEAN" | "DATE" | "TIMESTAMP";

/** Types a query parameter may declare (bound as prepared-statement values, never spliced). */
export type ParameterType = "VARCHAR" | "BIGINT" | "DOUBLE" | "BOOLEAN" | "DATE" | "TIMESTAMP";

export interface Party {
  /** Stable id, [a-z][a-z0-9_-]{0,63}. */
  id: string;
  name: string;
  /** Public key that signs this party's approvals, grants and requests (JWK, EC P-256, ES256). */
  signingKey: JsonWebKey;
  /** age X25519 recipient ("age1...") that results for this party are encrypted to. */
  ageRecipient: string;
}

export interface Column {
  name: string;
  type: ColumnType;
}

export interface Dataset {
  /** Table name inside the clean room, [a-z][a-z0-9_]{0,63}. */
  id: string;
  /** Party id of the owner: the only party that may grant it and receive its quality report. */
  owner: string;
  format: "csv" | "parquet";
  columns: Column[];
  /** Column holding the person identifier that k-thresholds count. */
  identityColumn: string;
  /** "sha256-hex": identities must be 64 lowercase hex characters (hashed emails/phones). */
  identityFormat?: "sha256-hex" | "any";
  /**
   * With "sha256-hex": the largest share of a load's rows (those with an identity) whose identity
   * is not in that format that the enclave drops instead of refusing the whole load; 0 to 0.5,
   * default DEFAULT_MAX_INVALID_IDENTITY_SHARE (0: any such identity refuses the load).
   */
  maxInvalidIdentityShare?: number;
  /** What approved queries may do with each column (the owner's analysis rule for it). */
  analysis: DatasetAnalysis;
}

/**
 * Aggregates a dataset owner can allow on a measure column. "min", "max" and "median" return one
 * person's value and are shown as warnings in the review.
 */
export type MeasureAggregate = "count" | "sum" | "avg" | "min" | "max" | "median";

export interface Measure {
  column: string;
  aggregates: MeasureAggregate[];
}

/**
 * Column roles under an `aggregation` rule. The identity column has none of them: it may appear
 * only in join equalities and the enclave's own distinct counts. A column with no role may not be
 * read by an aggregation query at all.
 */
export interface DatasetAnalysis {
  /** Columns, besides the identity, that may appear in join equalities with another dataset. */
  joinColumns: string[];
  /** Columns that may be selected, grouped by and filtered on. */
  dimensions: string[];
  /** Columns that may be aggregated, each with the aggregates its owner allows. */
  measures: Measure[];
}

export interface Parameter {
  name: string;
  type: ParameterType;
}

/** The numbers a DP mechanism is calibrated from (what enclave/dp reads). */
export interface DpParameters {
  /** Epsilon spent by one run (at least 1e-6). */
  epsilon: number;
  /** Total epsilon each requesting party may spend on this contract, over all its DP queries. */
  budget: number;
  /** Rows one person (identity value) contributes over the whole query, enforced before aggregation. */
  maxRowsPerIdentity?: number;
  /** Clamping range for SUM/AVG inputs, in the column's units. */
  clamp?: { lower: number; upper: number };
  /** Delta of the noisy threshold on "private" groups; enclave/dp's DEFAULT_DELTA when absent. */
  delta?: number;
}

/**
 * One noised output column (by output name). "count": COUNT(*), COUNT(col), COUNT(DISTINCT col);
 * "count-distinct": COUNT(DISTINCT identity); "sum": SUM(col), its inputs clamped and rounded to
 * `decimals` places (default 0); "avg": noisy `sum` / noisy `count`, two columns of this list.
 */
export type DpColumn =
  | { name: string; kind: "count" | "count-distinct" }
  | { name: string; kind: "sum"; decimals?: number }
  | { name: string; kind: "avg"; sum: string; count: string };

/**
 * How output rows arise: "single" (no GROUP BY, one row), "public" (exactly the groups of the
 * declared `domain`, whatever the data holds), "private" (keys come from the data: rows pass a
 * noisy threshold).
 */
export type DpGroups = "single" | "public" | "private";

/** One group-key output column's declared values; a "public" result has one row per combination. */
export interface DpDomain {
  column: string;
  values: (string | number | boolean)[];
}

export interface DpPolicy extends DpParameters {
  groups: DpGroups;
  /** "public" groups only: the key columns' values, declared in the contract, never taken from data. */
  domain?: DpDomain[];
  /** Every aggregate output column, noised as declared; any other output column is a group key. */
  columns: DpColumn[];
}

/**
 * Each party's total epsilon on a contract: the smallest budget any of its DP queries declares,
 * so no query's own budget lets a party spend past what the others allow (0 without DP queries).
 */
export function partyBudget(contract: Contract): number {
  const budgets = contract.queries.flatMap((q) => (q.policy.dp ? [q.policy.dp.budget] : []));
  return budgets.length ? Math.min(...budgets) : 0;
}

/** True when the differencing guard watches this query: the aggregation rule, unless turned off. */
export function differencingGuarded(policy: OutputPolicy): boolean {
  return policy.kind === "aggregation" && policy.differencingGuard !== false;
}

/** The floor under every query's k: no contract can declare a smaller minimum. */
export const MIN_K = 10;

/** Without `maxInvalidIdentityShare`, one identity in the wrong format refuses a whole load. */
export const DEFAULT_MAX_INVALID_IDENTITY_SHARE = 0;
/** The largest `maxInvalidIdentityShare` a contract may set. */
export const MAX_INVALID_IDENTITY_SHARE = 0.5;

/**
 * The analysis rule an approved query runs under (docs/QUERY-RULES.md):
 * - "aggregation": a positive grammar (dimensions, join equalities, allowed aggregates of
 *   measures); exact answers, every output row made of at least k people of every dataset read.
 * - "custom": richer SQL, released only with differential privacy (`dp` required).
 */
export type AnalysisRuleKind = "aggregation" | "custom";

export interface OutputPolicy {
  kind: AnalysisRuleKind;
  /** Minimum distinct identities per output row, for every dataset the query reads; k >= MIN_K. */
  minDistinctIdentities: number;
  /** Output column names that may leave the room; any other column makes the query invalid. */
  allowedColumns: string[];
  /** How many times the query may run in this contract's lifetime (all requesters together). */
  maxRuns?: number;
  /**
   * Aggregation rule only: suppress a row whose people differ from those of a row this query
   * released before by fewer than k, in any table (docs/QUERY-RULES.md). Default true.
   */
  differencingGuard?: boolean;
  /** Required under "custom", refused under "aggregation". */
  dp?: DpPolicy;
}

export interface ApprovedQuery {
  /** Stable id, [a-z][a-z0-9_-]{0,63}. */
  id: string;
  description?: string;
  /** One DuckDB SELECT over the contract's dataset tables, with $named parameters. */
  sql: string;
  parameters: Parameter[];
  /** Party ids allowed to run it. */
  runners: string[];
  /** Party ids that receive the result (each gets its own age ciphertext). */
  recipients: string[];
  policy: OutputPolicy;
}

export interface Contract {
  version: 1;
  /** Human name for the collaboration, e.g. "acme-news-q3". */
  id: string;
  parties: Party[];
  datasets: Dataset[];
  queries: ApprovedQuery[];
}
