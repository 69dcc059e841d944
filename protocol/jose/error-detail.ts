/**
 * The sealed detail of an enclave refusal (docs/PROTOCOL.md §7, "Errors"). The host relays an
 * error's code and a fixed message per code; what names the thing (the reason, a row and column,
 * a parameter, a dataset) goes only to the party whose signed request failed: a compact JWS by
 * the enclave signing key, header {alg ES256, typ "cleanroom-error+jws"}, payload
 * {iat, inReplyTo, error}, padded with spaces to DETAIL_BYTES, then age-encrypted to the party's
 * contract recipient (by the caller). The signature and `inReplyTo` tell the party's client the
 * enclave wrote it for this request (anyone, the host included, can encrypt to a public
 * recipient); the padding keeps the ciphertext's length from telling the host the message's.
 */
import { EnvelopeError, ResponseSignatureError } from "./errors.js";
import { importVerifyKey, readHeader, signCompact, verifyCompact } from "./lib/jws.js";
import { isPlainObject, keysProblem, NONCE, parseJsonObject } from "./lib/shape.js";

export const ERROR_DETAIL_TYP = "cleanroom-error+jws";
/** Every detail plaintext has exactly this size. */
export const DETAIL_BYTES = 2048;
/** Longest message and name kept; any ASCII detail within these fits DETAIL_BYTES. */
const MAX_MESSAGE = 512;
const MAX_NAME = 128;
const CODE = /^ERR_[A-Z0-9_]{1,64}$/;

/** What a refused party reads: the code, the reason in words, and the names it concerns. */
export interface ErrorDetail {
  code: string;
  message: string;
  /** Data row (1-based; 0 is a CSV header) of an ingest refusal. */
  row?: number;
  column?: string;
  parameter?: string;
  dataset?: string;
  query?: string;
}

const NAMES = ["column", "parameter", "dataset", "query"] as const;

/** The signed, padded plaintext of a detail answering the request whose nonce is `inReplyTo`. */
export async function signErrorDetail(
  detail: ErrorDetail,
  signingKey: CryptoKey,
  options: { inReplyTo: string; iat?: number },
): Promise<Uint8Array> {
  if (!CODE.test(detail.code)) throw new EnvelopeError("error detail: malformed code");
  if (!NONCE.test(options.inReplyTo)) throw new EnvelopeError("error detail: malformed nonce");
  const error: ErrorDetail = { code: detail.code, message: detail.message.slice(0, MAX_MESSAGE) };
  if (detail.row !== undefined && Number.isSafeInteger(detail.row) && detail.row >= 0) error.row = detail.row;
  for (const k of NAMES) {
    const v = detail[k];
    if (typeof v === "string") error[k] = v.slice(0, MAX_NAME);
  }
  const iat = options.iat ?? Math.floor(Date.now() / 1000);
  const sign = (e: ErrorDetail) =>
    signCompact(
      new TextEncoder().encode(JSON.stringify({ iat, inReplyTo: options.inReplyTo, error: e })),
      { alg: "ES256", typ: ERROR_DETAIL_TYP },
      signingKey,
    );
  let jws = await sign(error);
  // Only text that JSON must escape heavily can overflow; the reason in words is then dropped.
  if (jws.length > DETAIL_BYTES) jws = await sign({ code: error.code, message: "detail too long" });
  const out = new Uint8Array(DETAIL_BYTES).fill(0x20);
  out.set(new TextEncoder().encode(jws));
  return out;
}

/**
 * The detail in a decrypted plaintext, checked: exact size, header, signature by the attested
 * enclave key (ResponseSignatureError), `inReplyTo` equal to the nonce of the request the client
 * sent (ResponseSignatureError), closed payload shape (EnvelopeError).
 */
export async function openErrorDetail(
  plaintext: Uint8Array,
  enclaveSigningPublicJwk: JsonWebKey,
  options: { inReplyTo: string },
): Promise<ErrorDetail> {
  if (plaintext.length !== DETAIL_BYTES) throw new EnvelopeError("error detail: wrong size");
  const jws = new TextDecoder().decode(plaintext).trimEnd();
  if (!readHeader(jws, ERROR_DETAIL_TYP, false)) throw new ResponseSignatureError("not an error detail");
  const bytes = await verifyCompact(jws, await importVerifyKey(enclaveSigningPublicJwk));
  if (!bytes) throw new ResponseSignatureError("signature does not verify");
  const p = parseJsonObject(bytes);
  if (!p || keysProblem(p, ["iat", "inReplyTo", "error"]) || !Number.isSafeInteger(p.iat)) {
    throw new EnvelopeError("error detail: malformed payload");
  }
  if (p.inReplyTo !== options.inReplyTo) throw new ResponseSignatureError("detail answers another request");
  const e = p.error;
  if (
    !isPlainObject(e) ||
    keysProblem(e, ["code", "message"], ["row", ...NAMES]) ||
    typeof e.code !== "string" ||
    !CODE.test(e.code) ||
    typeof e.message !== "string" ||
    (e.row !== undefined && !(Number.isSafeInteger(e.row) && (e.row as number) >= 0)) ||
    NAMES.some((k) => e[k] !== undefined && typeof e[k] !== "string")
  ) {
    throw new EnvelopeError("error detail: malformed payload");
  }
  return e as unknown as ErrorDetail;
}
