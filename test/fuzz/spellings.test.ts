/**
 * One text per signed value. jose decodes base64url leniently (non-zero trailing bits, "="
 * padding, whitespace), so one signature or JWE has many spellings it verifies or decrypts; the
 * product's checks refuse every spelling but the canonical one. Each case below lists every such
 * spelling of a valid input (harness.ts `respellings`) and shows jose alone accepting some of them.
 */
import { compactDecrypt, compactVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { decryptAtEnclave } from "../../protocol/jose/decrypt.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { importVerifyKey, isCanonicalCompact } from "../../protocol/jose/lib/jws.js";
import { ReplayGuard } from "../../protocol/jose/replay-guard.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { signResponse } from "../../protocol/jose/sign-response.js";
import { verifyRequest } from "../../protocol/jose/verify-request.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { x25519PublicJwk, x25519PublicRaw } from "../../protocol/jose/x25519.js";
import { respellings } from "./harness.js";
import { approvalsTarget, auditLogTarget, type JoseWorld, joseWorld, simWorld } from "./targets.js";

let w: JoseWorld;
beforeAll(async () => {
  w = await joseWorld();
});

/** How many of `texts` jose's own verification accepts with `key`. */
async function joseAccepts(texts: string[], key: CryptoKey): Promise<number> {
  let n = 0;
  for (const t of texts)
    await compactVerify(t, key).then(
      () => (n += 1),
      () => undefined,
    );
  return n;
}

describe("canonical base64url", () => {
  it("accepts exactly one spelling of each part", () => {
    expect(isCanonicalCompact("AA.AAE.", 3)).toBe(true);
    for (const bad of ["AB.AAE.", "AA.AAF.", "AA==.AAE.", "A A.AAE.", "AA.AAE.\n", "AA.AAE", "AA.+/8."]) {
      expect(isCanonicalCompact(bad, 3), JSON.stringify(bad)).toBe(false);
    }
    expect(isCanonicalCompact("AA..AA.AA.AA", 5)).toBe(true);
    expect(isCanonicalCompact("AA..AA.AA.AA", 3)).toBe(false);
  });

  it("an ES256 signature has 15 other trailing-bit spellings; jose verifies them all", async () => {
    const jws = await signResponse({ ok: true }, w.enclaveSigning.privateKey);
    const signature = jws.split(".")[2]!;
    expect(signature).toHaveLength(86);
    const others = respellings(jws).filter((t) => t.split(".")[2] !== signature);
    const key = await importVerifyKey(w.enclaveSigning.publicJwk);
    // 15 trailing-bit variants, padding, and two whitespace insertions: all the same 64 bytes to jose.
    expect(others).toHaveLength(18);
    expect(await joseAccepts(others, key)).toBe(18);
  });
});

describe("every other spelling is refused", () => {
  it("party requests: ERR_REQUEST_SIGNATURE", async () => {
    const jws = await signRequest(
      "query",
      { queryId: "conversions-by-campaign", params: {}, resultFormat: "json" },
      {
        partyId: "advertiser",
        privateKey: w.parties[0]!.privateKey,
        contractDigest: w.digest,
        audience: w.audience,
        counter: 1,
      },
    );
    const verify = (t: string) =>
      verifyRequest(t, w.contract, new ReplayGuard(), { contractDigest: w.digest, audience: w.audience });
    await expect(verify(jws)).resolves.toMatchObject({ party: "advertiser", seq: 1 });
    const others = respellings(jws);
    expect(await joseAccepts(others, await importVerifyKey(w.parties[0]!.publicJwk))).toBeGreaterThan(0);
    for (const t of others) {
      await expect(verify(t), JSON.stringify(t)).rejects.toMatchObject({ code: "ERR_REQUEST_SIGNATURE" });
    }
  });

  it("enclave responses: ERR_RESPONSE_SIGNATURE", async () => {
    const jws = await signResponse({ ok: true }, w.enclaveSigning.privateKey);
    const verify = (t: string) => verifyResponse(t, w.enclaveSigning.publicJwk);
    await expect(verify(jws)).resolves.toMatchObject({ body: { ok: true } });
    for (const t of respellings(jws)) {
      await expect(verify(t), JSON.stringify(t)).rejects.toMatchObject({ code: "ERR_RESPONSE_SIGNATURE" });
    }
  });

  it("JWEs to the enclave: ERR_ENVELOPE, though jose decrypts the IV, ciphertext and tag spellings", async () => {
    const jwe = await encryptToEnclave(new Uint8Array([1, 2, 3]), w.enclavePublicJwk);
    expect([...(await decryptAtEnclave(jwe, w.enclavePrivate)).plaintext]).toEqual([1, 2, 3]);
    const others = respellings(jwe);
    let joseDecrypts = 0;
    for (const t of others) {
      await compactDecrypt(t, w.enclavePrivate).then(
        () => (joseDecrypts += 1),
        () => undefined,
      );
      await expect(decryptAtEnclave(t, w.enclavePrivate), JSON.stringify(t)).rejects.toMatchObject({
        code: "ERR_ENVELOPE",
      });
    }
    expect(joseDecrypts).toBeGreaterThan(0);
  });

  it("audit entries: ERR_AUDIT, for each entry of a log", async () => {
    const target = await auditLogTarget(w, await simWorld());
    const log = await auditEntries(target);
    for (const [i, entry] of log.entries()) {
      for (const t of respellings(entry)) {
        await expect(target.run([i, t]), `entry ${i + 1}`).rejects.toMatchObject({ code: "ERR_AUDIT" });
      }
    }
  });

  it("contract approvals: ERR_CONTRACT_SIGNATURE, for each party's", async () => {
    const target = await approvalsTarget(w);
    const approvals = await auditEntries(target);
    for (const [i, approval] of approvals.entries()) {
      for (const t of respellings(approval)) {
        await expect(target.run([i, t]), `approval ${i}`).rejects.toMatchObject({
          code: "ERR_CONTRACT_SIGNATURE",
        });
      }
    }
  });

  it("X25519 keys in JWKs: only the canonical x", () => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const jwk = x25519PublicJwk(raw);
    expect(x25519PublicRaw(jwk)).toEqual(raw);
    for (const x of respellings(jwk.x!)) {
      expect(() => x25519PublicRaw({ ...jwk, x }), JSON.stringify(x)).toThrow(/not base64url/);
    }
  });
});

/** The unmutated list a signed-list target was built from (each element is accepted as itself). */
async function auditEntries(target: { arbitrary: unknown; run: (i: [number, string]) => unknown }) {
  // The oracle's seeds are the list itself; read them back through the target's own closure.
  return (target as unknown as { list: string[] }).list;
}
