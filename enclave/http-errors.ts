/**
 * Errors as the enclave API returns them: a status by error code and the body
 * {"error":{"code","message","detail"?}}. What the host reads is the code and a fixed message per
 * code (MESSAGES below, else one per status): never the error's own message, which may name a row,
 * a column or a parameter the requester chose. Anything that is not a CleanroomError with a status
 * here is a 500 ERR_INTERNAL, so engine or library text, which can quote data values, never leaves.
 * When the party the call came from is known (enclave/requester.ts), `detail` carries the error's
 * own message and names, signed and age-encrypted to that party (protocol/jose/error-detail.ts).
 */
import { isCleanroomError } from "../attestation/errors.js";
import { encryptBytes } from "../protocol/age/stream-node.js";
import { type ErrorDetail, signErrorDetail } from "../protocol/jose/error-detail.js";
import type { Requester } from "./requester.js";

const STATUS: Record<string, number> = {
  // Malformed input.
  ERR_USAGE: 400,
  ERR_CONTRACT: 400,
  ERR_ENVELOPE: 400,
  ERR_QUERY_PARAMETER: 400,
  ERR_INGEST_SCHEMA: 400,
  ERR_INGEST_FAILED: 400,
  ERR_INGEST_IDENTITY_FORMAT: 400,
  ERR_INGEST_EMPTY: 400,
  ERR_AGE_FORMAT: 400,
  ERR_AUDIT: 400,
  ERR_AUDIT_RESTORE: 400,
  // Refused by a signature or by the contract's policy.
  ERR_CONTRACT_SIGNATURE: 403,
  ERR_CONTRACT_QUERY: 403,
  ERR_REQUEST_SIGNATURE: 403,
  ERR_REQUEST_AUDIENCE: 403,
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
  ERR_DATASET_VERSION: 409,
  ERR_AUDIT_ROLLBACK: 409,
  ERR_AUDIT_HEAD_REQUIRED: 409,
  ERR_DATASET_NOT_LOADED: 409,
  ERR_TOO_LARGE: 413,
  // Typed failures inside the room whose messages are fixed and generic.
  ERR_QUERY_FAILED: 500,
  ERR_QUERY_TIMEOUT: 500,
};

/** The host's text for a code: fixed, saying what kind of refusal it is and nothing of the input. */
const MESSAGES: Record<string, string> = {
  ERR_USAGE: "malformed request",
  ERR_CONTRACT: "malformed contract",
  ERR_ENVELOPE: "malformed envelope, or not for this enclave",
  ERR_QUERY_PARAMETER: "parameters do not match the query's declaration",
  ERR_INGEST_SCHEMA: "data does not match the dataset's schema",
  ERR_INGEST_FAILED: "load failed",
  ERR_INGEST_IDENTITY_FORMAT: "identities are not in the dataset's declared format",
  ERR_INGEST_EMPTY: "no row to load; nothing was changed",
  ERR_AGE_FORMAT: "malformed age file",
  ERR_AUDIT: "audit log does not verify",
  ERR_CONTRACT_SIGNATURE: "contract approvals do not verify",
  ERR_CONTRACT_QUERY: "an approved query does not fit its analysis rule",
  ERR_REQUEST_SIGNATURE: "request signature or claims do not verify",
  ERR_REQUEST_AUDIENCE: "request made for another enclave instance",
  ERR_UNKNOWN_PARTY: "signer is not a contract party",
  ERR_NOT_PERMITTED: "not permitted by the contract",
  ERR_QUERY_NOT_APPROVED: "query not in the contract",
  ERR_NO_GRANT: "no grant for this ciphertext",
  ERR_DIGEST_MISMATCH: "ciphertext differs from the granted one",
  ERR_AGE_DECRYPT: "age file does not decrypt",
  ERR_AGE_NO_IDENTITY: "age file not encrypted to this enclave",
  ERR_MAX_RUNS: "query has no runs left",
  ERR_DP_BUDGET: "privacy budget exhausted",
  ERR_DP_POLICY: "refused by the differential privacy policy",
  ERR_QUERY_RESULT_TOO_LARGE: "result exceeds the row cap",
  ERR_NOT_FOUND: "no such route",
  ERR_NO_CONTRACT: "no contract accepted",
  ERR_UNKNOWN_DATASET: "dataset not in the contract",
  ERR_REPLAY: "request replayed or out of sequence",
  ERR_CONTRACT_STATE: "conflicts with the enclave's contract state",
  ERR_ALREADY_LOADED: "another load of the dataset is in progress",
  ERR_DATASET_VERSION: "the grant does not name the dataset's current version",
  ERR_AUDIT_ROLLBACK: "audit log is behind or differs from the head the requester saw",
  ERR_DATASET_NOT_LOADED: "a dataset the query reads is not loaded",
  ERR_TOO_LARGE: "request body too large",
  ERR_QUERY_FAILED: "query failed inside the clean room",
  ERR_QUERY_TIMEOUT: "query exceeded its time limit",
};

/** For a code without its own text. */
const BY_STATUS: Record<number, string> = {
  400: "malformed input",
  403: "refused by a signature or the contract's policy",
  404: "not found",
  409: "conflicts with the enclave's state",
  413: "too large",
  500: "failed inside the enclave",
};

export interface ErrorReply {
  status: number;
  body: { error: { code: string; message: string; detail?: string } };
}

/** Status, code and the fixed host-facing message; no detail (see sealDetail). */
export function errorReply(e: unknown): ErrorReply {
  const status = isCleanroomError(e) ? STATUS[e.code] : undefined;
  if (!isCleanroomError(e) || status === undefined) {
    return { status: 500, body: { error: { code: "ERR_INTERNAL", message: "internal error" } } };
  }
  const message = MESSAGES[e.code] ?? BY_STATUS[status] ?? "refused";
  return { status, body: { error: { code: e.code, message } } };
}

/**
 * The error's own message and the names it concerns, for the party it answers: signed by the
 * enclave, age-encrypted to `requester`'s recipient, base64. Undefined for an ERR_INTERNAL (its
 * text is not ours to pass on). Names are read from an allow-list of typed fields of our errors.
 * This party may read what its own request and its own file hold; messages still quote nothing
 * of another party's rows (an engine failure stays ERR_QUERY_FAILED, whose text is fixed).
 */
export async function sealDetail(
  e: unknown,
  requester: Requester,
  signingKey: CryptoKey,
): Promise<string | undefined> {
  if (!isCleanroomError(e) || STATUS[e.code] === undefined) return undefined;
  const f = e as unknown as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === "string" ? v : undefined);
  const detail: ErrorDetail = { code: e.code, message: e.message };
  if (typeof f.row === "number") detail.row = f.row;
  const names = {
    column: text(f.column),
    parameter: text(f.parameter),
    dataset: text(f.dataset) ?? requester.dataset,
    query: text(f.queryId),
  };
  for (const [k, v] of Object.entries(names)) if (v !== undefined) detail[k as keyof typeof names] = v;
  const plaintext = await signErrorDetail(detail, signingKey, { inReplyTo: requester.inReplyTo });
  return Buffer.from(await encryptBytes(plaintext, [requester.recipient])).toString("base64");
}
