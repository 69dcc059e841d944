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
 * status, code and (fixed) message unchanged; `code` stays this class's so callers can tell a
 * relayed refusal from the host's own.
 */
export class EnclaveRejectedError extends CleanroomError {
  static override code = "ERR_ENCLAVE_REJECTED";
  constructor(
    readonly status: number,
    readonly enclaveCode: string,
    readonly enclaveMessage: string,
  ) {
    super("enclave refused the request");
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
