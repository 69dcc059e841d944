/**
 * Error families of the SQL engine. Messages are fixed or name only contract-declared things
 * (dataset ids, column and parameter names, query ids); they never quote a data or parameter value.
 */
import { CleanroomError } from "../../attestation/errors.js";

/** A dataset does not match its contract schema (header, column type, unparseable value). */
export class IngestError extends CleanroomError {
  static override code = "ERR_INGEST_SCHEMA";
  /** Data row number (1-based; 0 is the CSV header); absent for file-level schema mismatches. */
  readonly row: number | undefined;
  /** Contract column name the problem is in, when known. */
  readonly column: string | undefined;

  constructor(message: string, where: { row?: number; column?: string } = {}) {
    super(message);
    this.row = where.row;
    this.column = where.column;
  }
}

/**
 * A dataset declared `identityFormat: "sha256-hex"` has non-null identities that are not 64
 * lowercase hex characters (raw emails or phone numbers, uppercase hex, another hash). The message
 * names the dataset, the column and how many rows, never a value.
 */
export class IdentityFormatError extends CleanroomError {
  static override code = "ERR_INGEST_IDENTITY_FORMAT";
  readonly dataset: string;
  readonly column: string;
  /** Rows whose identity has the wrong format. */
  readonly rows: number;

  constructor(dataset: string, column: string, rows: number) {
    super(
      `ingest: dataset ${dataset} column ${column}: ${rows} row${rows === 1 ? "" : "s"} with an identity ` +
        "that is not 64 lowercase hex characters (identityFormat sha256-hex); nothing was loaded. " +
        "Hash the identities first (e.g. cleanroom hash-ids), then upload and grant the new file",
    );
    this.dataset = dataset;
    this.column = column;
    this.rows = rows;
  }
}

/**
 * A load would leave no row: an empty or header-only file, or no row with a valid identity. It is
 * refused so that a wrong file never replaces good data with nothing.
 */
export class EmptyLoadError extends CleanroomError {
  static override code = "ERR_INGEST_EMPTY";
  readonly dataset: string;

  constructor(dataset: string) {
    super(
      `ingest: dataset ${dataset}: no row to load (an empty or header-only file, or no row with a ` +
        "valid identity); nothing was changed. Check the file (cleanroom check), then upload and grant it again",
    );
    this.dataset = dataset;
  }
}

/** A load failed for a reason other than its content's schema (stream error, engine failure). */
export class IngestFailedError extends CleanroomError {
  static override code = "ERR_INGEST_FAILED";
}

export { QueryCheckError } from "../../protocol/rules/errors.js";

/** A run's parameters are missing, extra or not of their declared type. */
export class ParameterError extends CleanroomError {
  static override code = "ERR_QUERY_PARAMETER";
  readonly parameter: string;

  constructor(parameter: string, problem: string) {
    super(`parameter ${parameter}: ${problem}`);
    this.parameter = parameter;
  }
}

/**
 * The engine failed while running an approved query. Engine messages can quote row values, so
 * the original error is kept only as a non-enumerable `cause` (never serialised or returned).
 */
export class QueryFailedError extends CleanroomError {
  static override code = "ERR_QUERY_FAILED";

  constructor(cause?: unknown) {
    super("query failed inside the clean room", { cause });
  }
}

/** A run produced more rows than the engine's result cap. */
export class ResultTooLargeError extends CleanroomError {
  static override code = "ERR_QUERY_RESULT_TOO_LARGE";
}

/** A run was interrupted after the engine's statement timeout. */
export class QueryTimeoutError extends CleanroomError {
  static override code = "ERR_QUERY_TIMEOUT";
}
