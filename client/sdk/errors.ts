/**
 * Failures of the partner SDK. Like every clean-room error they carry a stable `code` and a
 * fixed message; server-supplied codes travel in fields, never as our own code.
 */
import { CleanroomError } from "../../attestation/errors.js";
import type { VerificationResult } from "../../attestation/result.js";

/** The enclave's evidence did not verify: nothing may be sent to it. */
export class AttestationRefusedError extends CleanroomError {
  static override code = "ERR_ATTESTATION_REFUSED";
  readonly result: VerificationResult | undefined;

  constructor(result?: VerificationResult) {
    super("enclave attestation refused");
    this.result = result;
  }
}

/** The host answered with an HTTP error; `serverCode` is its {error:{code}} when it sent one. */
export class HostError extends CleanroomError {
  static override code = "ERR_HOST";
  readonly status: number;
  readonly serverCode: string | undefined;
  readonly serverMessage: string | undefined;

  constructor(status: number, serverCode?: string, serverMessage?: string) {
    super(`host answered ${status}${serverCode ? ` ${serverCode}` : ""}`);
    this.status = status;
    this.serverCode = serverCode;
    this.serverMessage = serverMessage;
  }
}

/** The host could not be reached, timed out, or a local file could not be read or written. */
export class IoError extends CleanroomError {
  static override code = "ERR_IO";
}

/** The host's answer is not the shape the protocol defines (it is untrusted: refuse, don't guess). */
export class HostResponseError extends CleanroomError {
  static override code = "ERR_HOST_RESPONSE";
}

/** A decrypted result does not hash to the digest the enclave signed. */
export class ResultDigestError extends CleanroomError {
  static override code = "ERR_RESULT_DIGEST";
}

/** An identifier cannot be normalised (not an email, a phone number without country code...). */
export class NormalizeError extends CleanroomError {
  static override code = "ERR_NORMALIZE";
}

/** A CSV file is malformed; `row` is the 1-based record number. */
export class CsvFormatError extends CleanroomError {
  static override code = "ERR_CSV";
  readonly row: number;

  constructor(row: number, reason: string) {
    super(`csv record ${row}: ${reason}`);
    this.row = row;
  }
}
