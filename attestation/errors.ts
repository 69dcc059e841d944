/**
 * One error base for the whole product. Callers and tests match `code`, never `message`;
 * messages are fixed per class and never quote input bytes or data values.
 */
export class CleanroomError extends Error {
  static code = "ERR_CLEANROOM";
  readonly code: string = CleanroomError.code;

  constructor(message = "clean room error", options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = (new.target as typeof CleanroomError).code;
  }
}

/** Evidence bytes do not have the expected shape (size, version, reserved fields, CBOR, DER). */
export class EvidenceFormatError extends CleanroomError {
  static override code = "ERR_EVIDENCE_FORMAT";
}

/** A certificate is missing, malformed, not yet valid or expired at the verification time. */
export class CertificateError extends CleanroomError {
  static override code = "ERR_CERTIFICATE";
}

/** The certificate chain does not lead to a trusted (pinned or explicitly trusted) root. */
export class UntrustedRootError extends CleanroomError {
  static override code = "ERR_UNTRUSTED_ROOT";
}

/** Evidence signed by a simulated platform while no simulated root is trusted. */
export class SimulatedEvidenceError extends CleanroomError {
  static override code = "ERR_SIMULATED_EVIDENCE";
}

/** A signature (certificate or evidence) does not verify. */
export class SignatureError extends CleanroomError {
  static override code = "ERR_SIGNATURE";
}

/** Verified evidence whose claims the policy does not accept (debug, measurement, TCB, binding...). */
export class PolicyError extends CleanroomError {
  static override code = "ERR_POLICY";
}

/** Wrong or missing input to an API call or command (not evidence content). */
export class UsageError extends CleanroomError {
  static override code = "ERR_USAGE";
}

/** True when `e` is one of ours; code paths that must only raise typed errors test with this. */
export function isCleanroomError(e: unknown): e is CleanroomError {
  return e instanceof CleanroomError;
}

/**
 * A verified SEV-SNP report whose REPORTED_TCB is below the minimum for its product (firmware or
 * microcode older than the policy accepts). A PolicyError with its own code; the message names
 * the low components (bootloader, tee, snp, microcode, fmc), never their values.
 */
export class TcbError extends PolicyError {
  static override code = "ERR_TCB";
}

/** A certificate of the chain is listed in a CRL issued by its issuer. */
export class RevokedError extends CertificateError {
  static override code = "ERR_REVOKED";
}

/** A CRL that is malformed, not signed by the chain it claims, or out of date at the verification time. */
export class CrlError extends CertificateError {
  static override code = "ERR_CRL";
}

/**
 * A verifier policy that cannot be enforced as configured (e.g. a Nitro policy that does not pin
 * the image). Raised before any evidence is looked at; a UsageError with its own code.
 */
export class PolicyConfigError extends UsageError {
  static override code = "ERR_POLICY_CONFIG";
}
