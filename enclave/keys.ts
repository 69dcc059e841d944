/**
 * The enclave's two key pairs, made at start and never exported: an age X25519 identity (its
 * raw public key is also the JWE key, so one attested recipient serves data and requests) and an
 * ES256 signing key (responses and audit entries). Callers get operations, not key material.
 */
import type { EnclaveKeys } from "../attestation/binding.js";
import { keysDigest } from "../attestation/binding.js";
import { toHex } from "../attestation/bytes.js";
import {
  decodeIdentity,
  decodeRecipient,
  generateIdentity,
  identityToRecipient,
} from "../protocol/age/keys.js";
import {
  decryptBatches,
  type ParallelDecryptOptions,
  type PlainBatch,
} from "../protocol/age/parallel-decrypt.js";
import type { ByteSource } from "../protocol/age/stream-node.js";
import { type Decrypted, decryptAtEnclave } from "../protocol/jose/decrypt.js";
import { signResponse } from "../protocol/jose/sign-response.js";
import { importX25519PrivateKey, x25519PublicJwk } from "../protocol/jose/x25519.js";

export class EnclaveKeyring {
  /** Public halves as published beside the evidence and bound into it. */
  readonly publicKeys: EnclaveKeys;
  /** The X25519 public key as an OKP JWK: what clients encrypt requests to. */
  readonly jwePublicJwk: JsonWebKey;
  /** Hex SHA-256 of the public keys' canonical form (attestation/binding.ts). */
  readonly keysDigest: string;
  readonly #ageIdentity: string;
  readonly #jweKey: CryptoKey;
  /** Non-extractable ES256 private key; handed to the audit log, which only signs with it. */
  readonly signingKey: CryptoKey;

  private constructor(
    init: { publicKeys: EnclaveKeys; jwePublicJwk: JsonWebKey; keysDigest: string; signingKey: CryptoKey },
    ageIdentity: string,
    jweKey: CryptoKey,
  ) {
    this.publicKeys = init.publicKeys;
    this.jwePublicJwk = init.jwePublicJwk;
    this.keysDigest = init.keysDigest;
    this.signingKey = init.signingKey;
    this.#ageIdentity = ageIdentity;
    this.#jweKey = jweKey;
  }

  static async generate(): Promise<EnclaveKeyring> {
    const ageIdentity = generateIdentity();
    const ageRecipient = await identityToRecipient(ageIdentity);
    const jweKey = await importX25519PrivateKey(decodeIdentity(ageIdentity), false);
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const publicKeys: EnclaveKeys = { signingKey: { kty, crv, x, y }, ageRecipient };
    return new EnclaveKeyring(
      {
        publicKeys,
        jwePublicJwk: x25519PublicJwk(decodeRecipient(ageRecipient)),
        keysDigest: toHex(await keysDigest(publicKeys)),
        signingKey: pair.privateKey,
      },
      ageIdentity,
      jweKey,
    );
  }

  /** Opens a compact JWE addressed to this enclave (protocol/jose/decrypt.ts). */
  openEnvelope(jwe: string): Promise<Decrypted> {
    return decryptAtEnclave(jwe, this.#jweKey);
  }

  /** Plaintext of an age file encrypted to this enclave's recipient, opened on worker threads. */
  decryptAge(source: ByteSource, options: ParallelDecryptOptions): AsyncGenerator<PlainBatch> {
    return decryptBatches(source, this.#ageIdentity, options);
  }

  /** A response JWS (protocol/jose/sign-response.ts) over `body`. */
  signResponse<B>(body: B, options: { inReplyTo?: string; iat?: number } = {}): Promise<string> {
    return signResponse(body, this.signingKey, options);
  }
}
