import { CleanroomError } from "../../attestation/errors.js";

/** A request's signature does not verify with its signer's contract key, or its header/claims are wrong. */
export class RequestSignatureError extends CleanroomError {
  static override code = "ERR_REQUEST_SIGNATURE";
}

/**
 * A correctly signed request made for another enclave instance: its `aud` is not this instance's
 * keys digest (the party attested another instance, e.g. before a restart).
 */
export class RequestAudienceError extends RequestSignatureError {
  static override code = "ERR_REQUEST_AUDIENCE";
}

/** A request reuses a nonce or does not advance its party's sequence number. */
export class ReplayError extends CleanroomError {
  static override code = "ERR_REPLAY";
}

/** A request names a signer that is not a party of the contract. */
export class UnknownPartyError extends CleanroomError {
  static override code = "ERR_UNKNOWN_PARTY";
}

/** An enclave response does not verify with the attested enclave signing key. */
export class ResponseSignatureError extends CleanroomError {
  static override code = "ERR_RESPONSE_SIGNATURE";
}

/** An envelope is not well-formed JOSE, has the wrong header, or does not decrypt. */
export class EnvelopeError extends CleanroomError {
  static override code = "ERR_ENVELOPE";
}
