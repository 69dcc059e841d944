/**
 * Refusals of the enclave runtime. Each has a stable code and a fixed message that quotes no
 * input; server.ts maps codes to HTTP statuses (http-errors.ts).
 */
import { CleanroomError } from "../attestation/errors.js";

/** No contract has been accepted yet (data, grants and queries all need one). */
export class NoContractError extends CleanroomError {
  static override code = "ERR_NO_CONTRACT";
}

/** The operation conflicts with the enclave's state: a second contract, a restore after acceptance. */
export class ContractStateError extends CleanroomError {
  static override code = "ERR_CONTRACT_STATE";
}

/** The signer is a party, but the contract does not let it do this (run, receive, grant). */
export class NotPermittedError extends CleanroomError {
  static override code = "ERR_NOT_PERMITTED";
}

/** The query id is not one of the contract's approved queries. */
export class QueryNotApprovedError extends CleanroomError {
  static override code = "ERR_QUERY_NOT_APPROVED";
}

/** The dataset id is not one of the contract's datasets. */
export class UnknownDatasetError extends CleanroomError {
  static override code = "ERR_UNKNOWN_DATASET";
}

/** Ingest without a grant from the dataset's owner for exactly this ciphertext digest. */
export class NoGrantError extends CleanroomError {
  static override code = "ERR_NO_GRANT";
}

/** The streamed ciphertext's SHA-256 is not the granted digest (a swapped or altered file). */
export class DigestMismatchError extends CleanroomError {
  static override code = "ERR_DIGEST_MISMATCH";
}

/** The dataset is already loaded, or a load of it is in progress. */
export class AlreadyLoadedError extends CleanroomError {
  static override code = "ERR_ALREADY_LOADED";
}

/** The query has used up its contract's maxRuns. */
export class MaxRunsError extends CleanroomError {
  static override code = "ERR_MAX_RUNS";
}

/**
 * The requester has seen an audit head this enclave's log does not contain (ahead of it, or a
 * different entry at that seq): the log it was given was rolled back or forked.
 */
export class AuditRollbackError extends CleanroomError {
  static override code = "ERR_AUDIT_ROLLBACK";
}

/** A request body exceeds its size limit. */
export class TooLargeError extends CleanroomError {
  static override code = "ERR_TOO_LARGE";
}

/** No such route. */
export class NotFoundError extends CleanroomError {
  static override code = "ERR_NOT_FOUND";
}

/** The query reads a dataset that has not been loaded yet. */
export class DatasetNotLoadedError extends CleanroomError {
  static override code = "ERR_DATASET_NOT_LOADED";
}
