/**
 * Failures of the partner SDK. Like every clean-room error they carry a stable `code` and a
 * fixed message; server-supplied codes travel in fields, never as our own code.
 */
import { fromBase64 } from "../../attestation/bytes.js";
import { CleanroomError } from "../../attestation/errors.js";
import type { VerificationResult } from "../../attestation/result.js";
import { type ErrorDetail, openErrorDetail } from "../../protocol/jose/error-detail.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import type { AgeDecrypt } from "./age.js";

/** The enclave's evidence did not verify: nothing may be sent to it. */
export class AttestationRefusedError extends CleanroomError {
  static override code = "ERR_ATTESTATION_REFUSED";
  readonly result: VerificationResult | undefined;

  constructor(result?: VerificationResult) {
    super("enclave attestation refused");
    this.result = result;
  }
}

/**
 * The host answered with an HTTP error; `serverCode` is its {error:{code}} when it sent one, and
 * `serverMessage` the fixed text the host sees. An enclave refusal of this party's own request
 * may carry `sealedDetail` (base64 age file to this party); once opened and verified
 * (`openHostError`), `detail` holds the enclave's own words and names, and the message shows them.
 */
export class HostError extends CleanroomError {
  static override code = "ERR_HOST";
  readonly status: number;
  readonly serverCode: string | undefined;
  readonly serverMessage: string | undefined;
  readonly sealedDetail: string | undefined;
  readonly detail: ErrorDetail | undefined;

  constructor(
    status: number,
    serverCode?: string,
    serverMessage?: string,
    more: { sealedDetail?: string; detail?: ErrorDetail; cause?: unknown } = {},
  ) {
    super(
      `host answered ${status}${serverCode ? ` ${serverCode}` : ""}${more.detail ? `: ${detailText(more.detail)}` : ""}`,
      more.cause !== undefined ? { cause: more.cause } : undefined,
    );
    this.status = status;
    this.serverCode = serverCode;
    this.serverMessage = serverMessage;
    this.sealedDetail = more.sealedDetail;
    this.detail = more.detail;
  }
}

/** The enclave's message, then the names it concerns that the message does not already spell. */
function detailText(d: ErrorDetail): string {
  const names: [string, string | number | undefined][] = [
    ["dataset", d.dataset],
    ["query", d.query],
    ["parameter", d.parameter],
    ["row", d.row],
    ["column", d.column],
  ];
  const more = names
    .filter(([k, v]) => v !== undefined && !d.message.includes(`${k} ${v}`))
    .map(([k, v]) => `${k} ${v}`);
  return more.length > 0 ? `${d.message} (${more.join(", ")})` : d.message;
}

/**
 * `e` with its sealed detail opened: decrypted with this party's age identity, the enclave's
 * signature checked with the attested key, and `inReplyTo` checked against the nonce of the
 * request this party sent; the code must be the one the host relayed. Anything else is returned
 * as it is. A detail that does not open or verify is dropped and said so in the message (the host
 * can encrypt anything to a public recipient, so an unverified one is never shown).
 */
export async function openHostError(
  e: unknown,
  o: {
    decrypt: AgeDecrypt;
    identity: string;
    enclaveSigningKey: JsonWebKey;
    inReplyTo: string;
  },
): Promise<unknown> {
  if (!(e instanceof HostError) || e.sealedDetail === undefined || e.detail !== undefined) return e;
  try {
    const plaintext = await o.decrypt(fromBase64(e.sealedDetail), o.identity);
    const detail = await openErrorDetail(plaintext, o.enclaveSigningKey, { inReplyTo: o.inReplyTo });
    if (detail.code !== e.serverCode) throw new EnvelopeError("error detail names another code");
    return new HostError(e.status, e.serverCode, e.serverMessage, { sealedDetail: e.sealedDetail, detail });
  } catch (cause) {
    return new UnverifiedDetailError(e, cause);
  }
}

/** A HostError whose sealed detail did not open or verify; the relayed code stands alone. */
export class UnverifiedDetailError extends HostError {
  constructor(e: HostError, cause: unknown) {
    super(e.status, e.serverCode, e.serverMessage, { cause });
    this.message = `${this.message} (its sealed detail did not verify and is not shown)`;
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
