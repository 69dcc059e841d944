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
