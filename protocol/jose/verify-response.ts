import { EnvelopeError, ResponseSignatureError } from "./errors.js";
import { importVerifyKey, readHeader, verifyCompact } from "./lib/jws.js";
import { keysProblem, parseJsonObject } from "./lib/shape.js";
import { RESPONSE_TYP, type ResponsePayload } from "./messages.js";

/**
 * Verify an enclave response with the attested enclave signing key (EC P-256 public JWK).
 * When `inReplyTo` is given, the response must answer exactly that request nonce.
 */
export async function verifyResponse<B = unknown>(
  jws: string,
  enclaveSigningPublicJwk: JsonWebKey,
  options: { inReplyTo?: string } = {},
): Promise<ResponsePayload<B>> {
  if (!readHeader(jws, RESPONSE_TYP, false)) throw new ResponseSignatureError("not a cleanroom response");
  const bytes = await verifyCompact(jws, await importVerifyKey(enclaveSigningPublicJwk));
  if (!bytes) throw new ResponseSignatureError("signature does not verify");
  const p = parseJsonObject(bytes);
  if (!p || keysProblem(p, ["iat", "body"], ["inReplyTo"]) || !Number.isSafeInteger(p.iat)) {
    throw new EnvelopeError("malformed response payload");
  }
  if (p.inReplyTo !== undefined && typeof p.inReplyTo !== "string") {
    throw new EnvelopeError("malformed response payload");
  }
  if (options.inReplyTo !== undefined && p.inReplyTo !== options.inReplyTo) {
    throw new ResponseSignatureError("response answers another request");
  }
  return p as unknown as ResponsePayload<B>;
}
