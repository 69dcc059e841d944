/**
 * Refusals of the untrusted host. Each has a stable code and a fixed message that quotes no
 * input; http-errors.ts maps them to HTTP statuses.
 */
import { CleanroomError } from "../attestation/errors.js";

/** The enclave socket refused, reset or dropped the connection (after any retries). */
export class EnclaveUnavailableError extends CleanroomError {
  static override code = "ERR_ENCLAVE_UNAVAILABLE";
  constructor(options?: { cause?: unknown }) {
    super("enclave unavailable", options);
  }
}

/** The enclave accepted the connection but went silent for longer than the idle timeout. */
export class EnclaveTimeoutError extends CleanroomError {
  static override code = "ERR_ENCLAVE_TIMEOUT";
  constructor() {
    super("enclave timed out");
  }
}

/** The enclave answered with something that is not the §7 shape (not JSON, too large, no error object). */
export class EnclaveProtocolError extends CleanroomError {
  static override code = "ERR_ENCLAVE_PROTOCOL";
  constructor(message = "enclave answer malformed") {
    super(message);
  }
}

/**
 * The enclave refused the operation with a well-formed §7 error. The host relays the enclave's
 * status, code, (fixed) message and sealed `detail` (base64 age file to the requesting party,
 * opaque here) unchanged; `code` stays this class's so callers can tell a relayed refusal from
 * the host's own.
 */
export class EnclaveRejectedError extends CleanroomError {
  static override code = "ERR_ENCLAVE_REJECTED";
  constructor(
    readonly status: number,
    readonly enclaveCode: string,
    readonly enclaveMessage: string,
    readonly detail?: string,
  ) {
    super("enclave refused the request");
  }
}

/**
 * Audit entries from the enclave that do not continue the host's copy: an entry already held
 * differs, or a new one skips a seq or does not link (`prev`) to the stored head. Nothing is kept.
 */
export class AuditContinuityError extends CleanroomError {
  static override code = "ERR_AUDIT_CONTINUITY";
  constructor() {
    super("audit entries do not continue the stored log");
  }
}

/**
 * Handing the stored audit log to a restarted enclave failed, so it would start over with budgets
 * and run counts reset: the host relays no contract to it until a restore succeeds.
 */
export class AuditRestoreFailedError extends CleanroomError {
  static override code = "ERR_AUDIT_RESTORE_FAILED";
  constructor() {
    super(
      "the restarted enclave did not take the stored audit log, so no contract is relayed to it; " +
        "the operator must restore the log (see the host log for the error code) or restart the enclave",
    );
  }
}

/** The bytes received do not hash to the digest named in the URL. */
export class DigestMismatchError extends CleanroomError {
  static override code = "ERR_DIGEST_MISMATCH";
  constructor() {
    super("blob digest mismatch");
  }
}

/** A blob or body exceeds its configured size limit. */
export class TooLargeError extends CleanroomError {
  static override code = "ERR_TOO_LARGE";
  constructor(message = "too large") {
    super(message);
  }
}

/**
 * The host's store has no space (or quota) left for a blob: what the upload had sent before is
 * dropped and the upload can resume from the host's offset once the operator has freed space.
 */
export class StoreFullError extends CleanroomError {
  static override code = "ERR_STORE_FULL";
  constructor(options?: { cause?: unknown }) {
    super("the host's store is full: its operator must free space, then the upload resumes", options);
  }
}

/** An identifier (blob digest, result id, party) is not of its exact allowed shape. */
export class BadIdError extends CleanroomError {
  static override code = "ERR_BAD_ID";
  constructor(what: "blob id" | "result id" | "party id") {
    super(`malformed ${what}`);
  }
}

/** No such blob, result or route. */
export class NotFoundError extends CleanroomError {
  static override code = "ERR_NOT_FOUND";
  constructor(message = "not found") {
    super(message);
  }
}

/** Too many requests from one client address in the rate-limit window. */
export class RateLimitedError extends CleanroomError {
  static override code = "ERR_RATE_LIMITED";
  constructor() {
    super("rate limited");
  }
}

/** A resumable upload's bytes do not start where the host's copy ends (ask for its offset again). */
export class UploadOffsetError extends CleanroomError {
  static override code = "ERR_UPLOAD_OFFSET";
  constructor() {
    super("upload offset differs from what the host holds: ask GET /blobs/{sha256}/upload and resume there");
  }
}

/** Another request is appending to the same upload, or it was declared with another length. */
export class UploadConflictError extends CleanroomError {
  static override code = "ERR_UPLOAD_CONFLICT";
}
