import { signCompact } from "./lib/jws.js";
import { RESPONSE_TYP, type ResponsePayload } from "./messages.js";

/**
 * Sign an enclave response: compact JWS {alg ES256, typ "cleanroom-response+jws"} over
 * {iat, inReplyTo?, body}. `inReplyTo` is the nonce of the request being answered.
 */
export function signResponse<B>(
  body: B,
  enclaveSigningKey: CryptoKey,
  options: { inReplyTo?: string; iat?: number } = {},
): Promise<string> {
  const payload: ResponsePayload<B> = { iat: options.iat ?? Math.floor(Date.now() / 1000), body };
  if (options.inReplyTo !== undefined) payload.inReplyTo = options.inReplyTo;
  return signCompact(
    new TextEncoder().encode(JSON.stringify(payload)),
    { alg: "ES256", typ: RESPONSE_TYP },
    enclaveSigningKey,
  );
}
