import { CleanroomError } from "../../attestation/errors.js";

export type TransportFailure =
  /** A textual address or sockaddr bytes that are not a well-formed address of a known family. */
  | "address"
  /** The kernel or runtime does not offer this socket family (no vsock driver, no FFI). */
  | "unsupported"
  /** connect() failed: nothing listening, refused, unreachable, timed out. */
  | "connect"
  /** socket(), bind() or listen() failed for a listener. */
  | "listen";

/**
 * Failures of the socket layer between host and enclave. One code for the family; `reason` says
 * which step failed and `detail` carries the errno name (ECONNREFUSED...), never a path or data.
 */
export class TransportError extends CleanroomError {
  static override code = "ERR_TRANSPORT";
  readonly reason: TransportFailure;
  readonly detail: string | undefined;

  constructor(reason: TransportFailure, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.detail = options?.detail;
  }
}
