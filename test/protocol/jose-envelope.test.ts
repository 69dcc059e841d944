import fc from "fast-check";
import { base64url, decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { decryptAtEnclave } from "../../protocol/jose/decrypt.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { EnvelopeError, ResponseSignatureError } from "../../protocol/jose/errors.js";
import { signResponse } from "../../protocol/jose/sign-response.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import {
  importX25519PrivateKey,
  importX25519PublicKey,
  x25519PrivateJwk,
  x25519PrivateRaw,
  x25519PublicFromPrivate,
  x25519PublicJwk,
  x25519PublicRaw,
} from "../../protocol/jose/x25519.js";

interface Enclave {
  privateRaw: Uint8Array;
  publicRaw: Uint8Array;
  privateKey: CryptoKey;
  publicJwk: JsonWebKey;
}

async function makeEnclave(): Promise<Enclave> {
  const kp = (await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", kp.privateKey);
  const privateRaw = base64url.decode(jwk.d!);
  const publicRaw = base64url.decode(jwk.x!);
  return {
    privateRaw,
    publicRaw,
    privateKey: await importX25519PrivateKey(privateRaw),
    publicJwk: x25519PublicJwk(publicRaw),
  };
}

let enclave: Enclave;
beforeAll(async () => {
  enclave = await makeEnclave();
});

describe("X25519 key conversions", () => {
  it("raw keys and OKP JWKs convert both ways and agree with WebCrypto", async () => {
    expect(enclave.publicJwk).toEqual({ kty: "OKP", crv: "X25519", x: base64url.encode(enclave.publicRaw) });
    expect(x25519PublicRaw(enclave.publicJwk)).toEqual(enclave.publicRaw);
    expect(await x25519PublicFromPrivate(enclave.privateRaw)).toEqual(enclave.publicRaw);
    const priv = await x25519PrivateJwk(enclave.privateRaw);
    expect(x25519PrivateRaw(priv)).toEqual(enclave.privateRaw);
    expect(x25519PublicRaw(priv)).toEqual(enclave.publicRaw);
    expect(enclave.privateKey.extractable).toBe(false);
    const pub = await importX25519PublicKey(enclave.publicRaw);
    expect(new Uint8Array(await crypto.subtle.exportKey("raw", pub))).toEqual(enclave.publicRaw);
  });

  it("refuses wrong lengths and wrong key types", async () => {
    expect(() => x25519PublicJwk(new Uint8Array(31))).toThrow(UsageError);
    expect(() => x25519PublicRaw({ kty: "EC", crv: "P-256", x: "AA" })).toThrow(UsageError);
    expect(() => x25519PublicRaw({ kty: "OKP", crv: "X25519", x: "AAAA" })).toThrow(UsageError);
    expect(() => x25519PrivateRaw({ kty: "OKP", crv: "X25519", x: enclave.publicJwk.x! })).toThrow(
      UsageError,
    );
    await expect(importX25519PrivateKey(new Uint8Array(33))).rejects.toThrow(UsageError);
  });
});

describe("JWE to the enclave", () => {
  it("round-trips a nested JWS with the documented header", async () => {
    const jws = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln";
    const jwe = await encryptToEnclave(jws, enclave.publicJwk);
    const header = decodeProtectedHeader(jwe);
    expect(header).toMatchObject({ alg: "ECDH-ES", enc: "A256GCM", cty: "JOSE" });
    expect(header.epk).toMatchObject({ kty: "OKP", crv: "X25519" });
    const out = await decryptAtEnclave(jwe, enclave.privateKey);
    expect(out.jws).toBe(jws);
  });

  it("property: round-trips arbitrary bytes; no cty for raw bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        const jwe = await encryptToEnclave(bytes, enclave.publicJwk);
        expect(decodeProtectedHeader(jwe).cty).toBeUndefined();
        const out = await decryptAtEnclave(jwe, enclave.privateKey);
        expect(out.plaintext).toEqual(bytes);
        expect(out.jws).toBeUndefined();
      }),
      { numRuns: 50 },
    );
  });

  it("refuses decryption with another enclave's key, and tampered ciphertext", async () => {
    const jwe = await encryptToEnclave("a.b.c", enclave.publicJwk);
    const other = await makeEnclave();
    await expect(decryptAtEnclave(jwe, other.privateKey)).rejects.toThrow(EnvelopeError);
    const parts = jwe.split(".");
    const ct = base64url.decode(parts[3]!);
    ct[0] = ct[0]! ^ 1;
    parts[3] = base64url.encode(ct);
    await expect(decryptAtEnclave(parts.join("."), enclave.privateKey)).rejects.toThrow(EnvelopeError);
    await expect(decryptAtEnclave("not a jwe", enclave.privateKey)).rejects.toThrow(EnvelopeError);
  });

  it("refuses to encrypt to a private JWK", async () => {
    const priv = await x25519PrivateJwk(enclave.privateRaw);
    await expect(encryptToEnclave("a.b.c", priv)).rejects.toThrow(UsageError);
  });
});

describe("enclave responses", () => {
  let key: CryptoKey;
  let jwk: JsonWebKey;
  beforeAll(async () => {
    const kp = await generateKeyPair("ES256");
    key = kp.privateKey;
    jwk = (await exportJWK(kp.publicKey)) as JsonWebKey;
  });

  it("round trip with inReplyTo and typ", async () => {
    const jws = await signResponse({ head: { seq: 4, hash: "00".repeat(32) } }, key, {
      inReplyTo: "ab".repeat(16),
    });
    expect(decodeProtectedHeader(jws)).toEqual({ alg: "ES256", typ: "cleanroom-response+jws" });
    const out = await verifyResponse<{ head: { seq: number } }>(jws, jwk, { inReplyTo: "ab".repeat(16) });
    expect(out.body.head.seq).toBe(4);
  });

  it("refuses another key, another request, and a tampered body", async () => {
    const jws = await signResponse({ ok: true }, key, { inReplyTo: "ab".repeat(16) });
    const other = (await exportJWK((await generateKeyPair("ES256")).publicKey)) as JsonWebKey;
    await expect(verifyResponse(jws, other)).rejects.toThrow(ResponseSignatureError);
    await expect(verifyResponse(jws, jwk, { inReplyTo: "cd".repeat(16) })).rejects.toThrow(
      ResponseSignatureError,
    );
    const [h, , s] = jws.split(".");
    const forged = `${h}.${base64url.encode(JSON.stringify({ iat: 1, body: { ok: false } }))}.${s}`;
    await expect(verifyResponse(forged, jwk)).rejects.toThrow(ResponseSignatureError);
  });
});
