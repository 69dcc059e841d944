import { CleanroomError } from "../../attestation/errors.js";

/** Bytes or strings that are not a well-formed age v1 header, stanza or key encoding. */
export class AgeFormatError extends CleanroomError {
  static override code = "ERR_AGE_FORMAT";
}

/** Authentication failed: a wrapped key, the header MAC or a payload chunk, or a truncated payload. */
export class AgeDecryptError extends CleanroomError {
  static override code = "ERR_AGE_DECRYPT";
}

/** None of the given identities can unwrap any stanza of the header. */
export class AgeNoIdentityError extends CleanroomError {
  static override code = "ERR_AGE_NO_IDENTITY";
}
