import { base64url, CompactSign } from "jose";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract } from "../../protocol/contract/types.js";
import { ReplayError } from "../../protocol/jose/errors.js";
import type { QueryBody } from "../../protocol/jose/messages.js";
import { ReplayGuard } from "../../protocol/jose/replay-guard.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { verifyRequest } from "../../protocol/jose/verify-request.js";
import { makeContract, makeParty, type TestParty } from "./fixtures.js";

let acme: TestParty;
let news: TestParty;
let contract: Contract;
let digest: string;
let guard: ReplayGuard;

const query: QueryBody = {
  queryId: "conversions-by-campaign",
  params: { since: "2024-07-01" },
  resultFormat: "csv",
  auditHead: { seq: 3, hash: "ab".repeat(32) },
};
const nonce = (n: number) => n.toString(16).padStart(32, "0");
/** The keys digest of the enclave instance the requests are for. */
const AUD = "a1".repeat(32);

beforeAll(async () => {
  acme = await makeParty("acme");
  news = await makeParty("news");
  contract = makeContract([acme, news]);
  digest = (await contractDigest(contract)).hex;
});
beforeEach(() => {
  guard = new ReplayGuard({ maxNonces: 4 });
});

const sign = (counter: number, n?: string, who: TestParty = acme) =>
  signRequest("query", query, {
    partyId: who.id,
    privateKey: who.privateKey,
    contractDigest: digest,
    audience: AUD,
    counter,
    ...(n ? { nonce: n } : {}),
  });

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "ok",
    (e: { code?: string }) => e.code ?? String(e),
  );
}

/** Re-sign a payload with an arbitrary header, as a party (or attacker holding its key) could. */
function resign(key: CryptoKey, header: object, payload: object): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header as { alg: string })
    .sign(key);
}

describe("signed requests", () => {
  it("round trip: header and payload fields", async () => {
    const jws = await sign(1);
    const out = await verifyRequest(jws, contract, guard, { expectedKind: "query", audience: AUD });
    expect(out).toMatchObject({ kind: "query", contract: digest, party: "acme", seq: 1, body: query });
    expect(out.nonce).toMatch(/^[0-9a-f]{32}$/);
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(jws.split(".")[0]!)));
    expect(header).toEqual({ alg: "ES256", typ: "cleanroom-query+jws", kid: "acme" });
    expect(guard.lastSeq("acme")).toBe(1);
  });

  it("refuses a replay of the same request", async () => {
    const jws = await sign(1);
    await verifyRequest(jws, contract, guard, { audience: AUD });
    expect(await codeOf(verifyRequest(jws, contract, guard, { audience: AUD }))).toBe("ERR_REPLAY");
  });

  it("refuses a seen nonce even with a higher seq, and a lower or equal seq with a new nonce", async () => {
    await verifyRequest(await sign(5, nonce(1)), contract, guard, { audience: AUD });
    expect(await codeOf(verifyRequest(await sign(6, nonce(1)), contract, guard, { audience: AUD }))).toBe(
      "ERR_REPLAY",
    );
    expect(await codeOf(verifyRequest(await sign(4, nonce(2)), contract, guard, { audience: AUD }))).toBe(
      "ERR_REPLAY",
    );
    expect(await codeOf(verifyRequest(await sign(5, nonce(3)), contract, guard, { audience: AUD }))).toBe(
      "ERR_REPLAY",
    );
    expect(await codeOf(verifyRequest(await sign(6, nonce(4)), contract, guard, { audience: AUD }))).toBe(
      "ok",
    );
  });

  it("keeps sequences per party", async () => {
    await verifyRequest(await sign(9), contract, guard, { audience: AUD });
    expect(
      await codeOf(verifyRequest(await sign(1, undefined, news), contract, guard, { audience: AUD })),
    ).toBe("ok");
  });

  it("refuses a tampered payload without touching the replay state", async () => {
    const [h, p, s] = (await sign(1)).split(".") as [string, string, string];
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    payload.body.params.since = "1970-01-01";
    const tampered = `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
    expect(await codeOf(verifyRequest(tampered, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
    expect(guard.lastSeq("acme")).toBe(0);
  });

  it("refuses a request signed with another party's key", async () => {
    const forged = await signRequest("query", query, {
      partyId: "acme",
      privateKey: news.privateKey,
      contractDigest: digest,
      audience: AUD,
      counter: 1,
    });
    expect(await codeOf(verifyRequest(forged, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
  });

  it("refuses a signer that is not in the contract", async () => {
    const mallory = await makeParty("mallory");
    expect(
      await codeOf(verifyRequest(await sign(1, undefined, mallory), contract, guard, { audience: AUD })),
    ).toBe("ERR_UNKNOWN_PARTY");
  });

  it("refuses an unexpected kind, a wrong typ, and a payload kind that disagrees with typ", async () => {
    expect(
      await codeOf(verifyRequest(await sign(1), contract, guard, { expectedKind: "grant", audience: AUD })),
    ).toBe("ERR_REQUEST_SIGNATURE");
    const payload = {
      kind: "query",
      contract: digest,
      aud: AUD,
      party: "acme",
      seq: 1,
      nonce: nonce(9),
      iat: 1,
      body: query,
    };
    const key = acme.privateKey;
    for (const typ of ["JWT", "cleanroom-response+jws", "cleanroom-approval+jws", "cleanroom-delete+jws"]) {
      const jws = await resign(key, { alg: "ES256", typ, kid: "acme" }, payload);
      expect(await codeOf(verifyRequest(jws, contract, guard, { audience: AUD }))).toBe(
        "ERR_REQUEST_SIGNATURE",
      );
    }
    const mislabelled = await resign(key, { alg: "ES256", typ: "cleanroom-load+jws", kid: "acme" }, payload);
    expect(await codeOf(verifyRequest(mislabelled, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
    const extraHeader = await resign(
      key,
      { alg: "ES256", typ: "cleanroom-query+jws", kid: "acme", b64: true },
      payload,
    );
    expect(await codeOf(verifyRequest(extraHeader, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
  });

  it("refuses a request made under another contract or naming another party", async () => {
    const other = await signRequest("query", query, {
      partyId: "acme",
      privateKey: acme.privateKey,
      contractDigest: "00".repeat(32),
      audience: AUD,
      counter: 1,
    });
    expect(await codeOf(verifyRequest(other, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
    const payload = {
      kind: "query",
      contract: digest,
      aud: AUD,
      party: "news",
      seq: 1,
      nonce: nonce(9),
      iat: 1,
      body: query,
    };
    const jws = await resign(
      acme.privateKey,
      { alg: "ES256", typ: "cleanroom-query+jws", kid: "acme" },
      payload,
    );
    expect(await codeOf(verifyRequest(jws, contract, guard, { audience: AUD }))).toBe(
      "ERR_REQUEST_SIGNATURE",
    );
  });

  it("refuses a request made for another enclave instance, and one without an audience", async () => {
    const jws = await sign(1);
    expect(await codeOf(verifyRequest(jws, contract, guard, { audience: "b2".repeat(32) }))).toBe(
      "ERR_REQUEST_AUDIENCE",
    );
    expect(guard.lastSeq("acme")).toBe(0);
    expect(await codeOf(verifyRequest(jws, contract, guard, { audience: AUD }))).toBe("ok");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(jws.split(".")[1]!)));
    expect(payload.aud).toBe(AUD);
    const { aud: _, ...without } = { ...payload, seq: 2, nonce: nonce(2) };
    const header = { alg: "ES256", typ: "cleanroom-query+jws", kid: "acme" };
    expect(
      await codeOf(
        verifyRequest(await resign(acme.privateKey, header, without), contract, guard, { audience: AUD }),
      ),
    ).toBe("ERR_ENVELOPE");
  });

  it("refuses malformed payloads and bodies with ERR_ENVELOPE", async () => {
    const base = {
      kind: "query",
      contract: digest,
      aud: AUD,
      party: "acme",
      seq: 1,
      nonce: nonce(9),
      iat: 1,
      body: query,
    };
    const header = { alg: "ES256", typ: "cleanroom-query+jws", kid: "acme" };
    for (const payload of [
      { ...base, extra: true },
      { ...base, body: { ...query, sql: "SELECT 1" } },
      { ...base, body: { ...query, resultFormat: "xml" } },
      { ...base, body: { ...query, params: { x: { nested: 1 } } } },
      { ...base, body: { ...query, auditHead: { seq: -1, hash: "00" } } },
      { ...base, iat: "now" },
      { ...base, seq: 0 },
      { ...base, seq: 1.5 },
      { ...base, nonce: "NOT-HEX" },
      { ...base, aud: "A1".repeat(32) },
    ]) {
      expect(
        await codeOf(
          verifyRequest(await resign(acme.privateKey, header, payload), contract, guard, { audience: AUD }),
        ),
      ).toBe("ERR_ENVELOPE");
    }
    const grantHeader = { ...header, typ: "cleanroom-grant+jws" };
    const grant = {
      dataset: "purchases",
      ciphertextDigest: "0f".repeat(32),
      fileKey: "A".repeat(22),
      sealShare: "A".repeat(43),
    };
    const ok = await resign(acme.privateKey, grantHeader, { ...base, kind: "grant", body: grant });
    expect(await codeOf(verifyRequest(ok, contract, guard, { audience: AUD }))).toBe("ok");
    const bad = await resign(acme.privateKey, grantHeader, {
      ...base,
      seq: 2,
      nonce: nonce(10),
      kind: "grant",
      body: { ...grant, ciphertextDigest: "XYZ" },
    });
    expect(await codeOf(verifyRequest(bad, contract, guard, { audience: AUD }))).toBe("ERR_ENVELOPE");
    // A seal share is 32 bytes in canonical base64url: another spelling or length is refused.
    for (const [i, sealShare] of [`${"A".repeat(42)}B`, "A".repeat(44), undefined].entries()) {
      const { sealShare: _, ...rest } = grant;
      const body = sealShare === undefined ? rest : { ...grant, sealShare };
      const odd = await resign(acme.privateKey, grantHeader, {
        ...base,
        seq: 3 + i,
        nonce: nonce(20 + i),
        kind: "grant",
        body,
      });
      expect(await codeOf(verifyRequest(odd, contract, guard, { audience: AUD }))).toBe("ERR_ENVELOPE");
    }
  });

  it("refuses garbage input", async () => {
    for (const s of ["", "a.b.c", "x", "eyJ9.e30.AA"]) {
      expect(await codeOf(verifyRequest(s, contract, guard, { audience: AUD }))).toBe(
        "ERR_REQUEST_SIGNATURE",
      );
    }
  });

  it("signRequest refuses bad options", async () => {
    const o = {
      partyId: "acme",
      privateKey: acme.privateKey,
      contractDigest: digest,
      audience: AUD,
      counter: 1,
    };
    await expect(signRequest("query", query, { ...o, counter: 0 })).rejects.toThrow(UsageError);
    await expect(signRequest("query", query, { ...o, nonce: "short" })).rejects.toThrow(UsageError);
    await expect(signRequest("query", query, { ...o, contractDigest: "x" })).rejects.toThrow(UsageError);
    await expect(signRequest("query", query, { ...o, partyId: "Acme" })).rejects.toThrow(UsageError);
    await expect(signRequest("query", query, { ...o, audience: "AB".repeat(32) })).rejects.toThrow(
      UsageError,
    );
  });
});

describe("ReplayGuard", () => {
  it("forgets nonces beyond its window but never lets seq go back", () => {
    const g = new ReplayGuard({ maxNonces: 2 });
    g.accept("acme", 1, nonce(1));
    g.accept("acme", 2, nonce(2));
    g.accept("acme", 3, nonce(3));
    expect(g.lastSeq("acme")).toBe(3);
    expect(() => g.check("acme", 4, nonce(2))).toThrow(ReplayError);
    expect(() => g.check("acme", 4, nonce(1))).not.toThrow(); // out of the window; seq still guards
    expect(() => g.check("acme", 2, nonce(1))).toThrow(ReplayError);
    expect(() => g.check("acme", 4, "XYZ")).toThrow(ReplayError);
    expect(() => g.check("acme", 1.5, nonce(7))).toThrow(ReplayError);
  });
});
