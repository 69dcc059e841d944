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

/** A load failed for a reason other than its content's schema (stream error, engine failure). */
export class IngestFailedError extends CleanroomError {
  static override code = "ERR_INGEST_FAILED";
}

/** An approved query of the contract does not have the accepted shape (docs/QUERY-RULES.md). */
export class QueryCheckError extends CleanroomError {
  static override code = "ERR_CONTRACT_QUERY";
  readonly queryId: string;
  readonly reason: string;

  constructor(queryId: string, reason: string) {
    super(`query ${queryId}: ${reason}`);
    this.queryId = queryId;
    this.reason = reason;
  }
}

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
