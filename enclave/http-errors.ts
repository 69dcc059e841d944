/**
 * Errors as the enclave API returns them: a status by error code and the body
 * {"error":{"code","message"}}. Only CleanroomError messages (fixed strings that quote no input)
 * are returned; anything else is a 500 with a generic message, so engine or library text, which
 * can quote data values, never reaches the host.
 */
import { isCleanroomError } from "../attestation/errors.js";

const STATUS: Record<string, number> = {
  // Malformed input.
  ERR_USAGE: 400,
  ERR_CONTRACT: 400,
  ERR_ENVELOPE: 400,
  ERR_QUERY_PARAMETER: 400,
  ERR_INGEST_SCHEMA: 400,
  ERR_INGEST_FAILED: 400,
  ERR_INGEST_IDENTITY_FORMAT: 400,
  ERR_AGE_FORMAT: 400,
  ERR_AUDIT: 400,
  // Refused by a signature or by the contract's policy.
  ERR_CONTRACT_SIGNATURE: 403,
  ERR_CONTRACT_QUERY: 403,
  ERR_REQUEST_SIGNATURE: 403,
  ERR_UNKNOWN_PARTY: 403,
  ERR_NOT_PERMITTED: 403,
  ERR_QUERY_NOT_APPROVED: 403,
  ERR_NO_GRANT: 403,
  ERR_DIGEST_MISMATCH: 403,
  ERR_AGE_DECRYPT: 403,
  ERR_AGE_NO_IDENTITY: 403,
  ERR_MAX_RUNS: 403,
  ERR_DP_BUDGET: 403,
  ERR_DP_POLICY: 403,
  ERR_QUERY_RESULT_TOO_LARGE: 403,
  // Not there.
  ERR_NOT_FOUND: 404,
  ERR_NO_CONTRACT: 404,
  ERR_UNKNOWN_DATASET: 404,
  // Conflicts with the enclave's state or its replay window.
  ERR_REPLAY: 409,
  ERR_CONTRACT_STATE: 409,
  ERR_ALREADY_LOADED: 409,
  ERR_AUDIT_ROLLBACK: 409,
  ERR_DP_ROLLBACK: 409,
  ERR_DP_LEDGER: 409,
  ERR_DATASET_NOT_LOADED: 409,
  ERR_TOO_LARGE: 413,
  // Typed failures inside the room whose messages are fixed and generic.
  ERR_QUERY_FAILED: 500,
  ERR_QUERY_TIMEOUT: 500,
};

export interface ErrorReply {
  status: number;
  body: { error: { code: string; message: string } };
}

export function errorReply(e: unknown): ErrorReply {
  const status = isCleanroomError(e) ? STATUS[e.code] : undefined;
  if (!isCleanroomError(e) || status === undefined) {
    return { status: 500, body: { error: { code: "ERR_INTERNAL", message: "internal error" } } };
  }
  return { status, body: { error: { code: e.code, message: e.message } } };
}
