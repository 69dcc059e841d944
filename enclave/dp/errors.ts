/**
 * Error families of the differential-privacy layer. Messages are fixed strings that never quote
 * a data value, an epsilon or a party's spending (those are the secrets and the accounting).
 */
import { CleanroomError } from "../../attestation/errors.js";

/** A DP parameter is missing or out of range (epsilon, delta, clamp, maxRowsPerIdentity, spec). */
export class DpPolicyError extends CleanroomError {
  static override code = "ERR_DP_POLICY";
}

/** Running the query would take the requesting party past its epsilon budget. */
export class BudgetExhaustedError extends CleanroomError {
  static override code = "ERR_DP_BUDGET";

  constructor() {
    super("privacy budget exhausted");
  }
}

/** A party presented a ledger head beyond (or beside) the one the enclave resumed from. */
export class LedgerRollbackError extends CleanroomError {
  static override code = "ERR_DP_ROLLBACK";
  /** seq of the stored head the presented one was compared with. */
  readonly seq: number;

  constructor(seq: number, reason: "head ahead of stored ledger" | "head forked from stored ledger") {
    super(`privacy ledger ${seq}: ${reason}`);
    this.seq = seq;
  }
}

/** Persisted ledger state or entries are malformed or do not chain. */
export class LedgerFormatError extends CleanroomError {
  static override code = "ERR_DP_LEDGER";
}
