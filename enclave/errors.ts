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

/** A load of the dataset is in progress (of another file: the same file's grant waits for it). */
export class AlreadyLoadedError extends CleanroomError {
  static override code = "ERR_ALREADY_LOADED";
}

/**
 * A grant does not name the dataset's current version: a first load names none, a replacement or
 * an append names the version it builds on, so a stale or repeated refresh cannot land twice.
 */
export class DatasetVersionError extends CleanroomError {
  static override code = "ERR_DATASET_VERSION";
  readonly dataset: string;
  /** The dataset's current version in this instance; 0 when it is not loaded. */
  readonly current: number;

  constructor(dataset: string, current: number, named: number | undefined) {
    super(
      current === 0
        ? `dataset ${dataset} is not loaded in this enclave, so there is no version ${named} to build on: grant it without --replace/--append`
        : `dataset ${dataset} is at version ${current}${named === undefined ? "" : `, not ${named}`}: ` +
            `grant with --replace ${current} (new rows instead) or --append ${current} (rows added)`,
    );
    this.dataset = dataset;
    this.current = current;
  }
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

/**
 * A restored audit log was refused: an entry does not verify (link, order, signature, or an
 * instance's evidence under this enclave's own platform, measurement and roots). Nothing was
 * changed; `seq` names the first failing entry.
 */
export class AuditRestoreError extends CleanroomError {
  static override code = "ERR_AUDIT_RESTORE";
  readonly seq: number;

  constructor(seq: number, reason: string) {
    super(
      `audit restore refused at entry ${seq}: ${reason}; hand over the log exactly as the enclave wrote it`,
    );
    this.seq = seq;
  }
}

/**
 * After a restore, a budgeted (DP) or run-limited (maxRuns) query needs proof that the restored
 * log holds what the parties saw: the requester's own last head, or every other party's.
 */
export class AuditHeadRequiredError extends CleanroomError {
  static override code = "ERR_AUDIT_HEAD_REQUIRED";
  constructor() {
    super(
      "the audit log was restored: send the last audit head this party saw before the restart " +
        "(clients send it with every grant and query), or wait until every other party has sent a request",
    );
  }
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
