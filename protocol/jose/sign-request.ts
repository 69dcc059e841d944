import { toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import { signCompact } from "./lib/jws.js";
import { HEX64, isPositiveSafeInteger, NONCE, PARTY_ID } from "./lib/shape.js";
import { type RequestBodies, type RequestKind, type RequestPayload, requestTyp } from "./messages.js";

export interface SignRequestOptions {
  partyId: string;
  /** The party's ES256 private key (its public half is the contract's signingKey). */
  privateKey: CryptoKey;
  /** Hex digest of the contract the request is made under. */
  contractDigest: string;
  /**
   * Hex keys digest (attestation/binding.ts `keysDigest`) of the enclave instance the request is
   * for: the one whose evidence the party verified. Another instance refuses the request.
   */
  audience: string;
  /** Strictly increasing per party; the enclave refuses any seq not above the last it accepted. */
  counter: number;
  /** 32 lowercase hex characters; random by default. */
  nonce?: string;
  iat?: number;
}

/**
 * Sign a party request: compact JWS, header {alg ES256, typ "cleanroom-<kind>+jws", kid party id},
 * payload {kind, contract, aud, party, seq, nonce, iat, body}.
 */
export async function signRequest<K extends RequestKind>(
  kind: K,
  body: RequestBodies[K],
  options: SignRequestOptions,
): Promise<string> {
  if (!PARTY_ID.test(options.partyId)) throw new UsageError("partyId is not a valid party id");
  if (!HEX64.test(options.contractDigest)) throw new UsageError("contractDigest must be 64 lowercase hex");
  if (!HEX64.test(options.audience)) throw new UsageError("audience must be 64 lowercase hex");
  if (!isPositiveSafeInteger(options.counter)) throw new UsageError("counter must be a positive integer");
  const nonce = options.nonce ?? toHex(crypto.getRandomValues(new Uint8Array(16)));
  if (!NONCE.test(nonce)) throw new UsageError("nonce must be 32 lowercase hex");
  const payload: RequestPayload<K> = {
    kind,
    contract: options.contractDigest,
    aud: options.audience,
    party: options.partyId,
    seq: options.counter,
    nonce,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    body,
  };
  return signCompact(
    new TextEncoder().encode(JSON.stringify(payload)),
    { alg: "ES256", typ: requestTyp(kind), kid: options.partyId },
    options.privateKey,
  );
}
