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
}

export interface Parameter {
  name: string;
  type: ParameterType;
}

export interface DpPolicy {
  /** Epsilon spent by one run. */
  epsilon: number;
  /** Total epsilon each requesting party may spend on this contract. */
  budget: number;
  /** Upper bound on rows one identity contributes, enforced before aggregation. */
  maxRowsPerIdentity?: number;
  /** Clamping range for SUM/AVG inputs. */
  clamp?: { lower: number; upper: number };
}

export interface OutputPolicy {
  /** "aggregate": every output row is a group of people; "row-level" returns rows and needs no k. */
  kind: "aggregate" | "row-level";
  /** Minimum distinct identities per output row (aggregate policies); k >= 1. */
  minDistinctIdentities: number;
  /** Output column names that may leave the room; any other column makes the query invalid. */
  allowedColumns: string[];
  /** How many times the query may run in this contract's lifetime (all requesters together). */
  maxRuns?: number;
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
