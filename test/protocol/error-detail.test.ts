/**
 * The sealed detail of an enclave refusal (protocol/jose/error-detail.ts): one size whatever it
 * says, signed by the enclave key for one request nonce, closed shape.
 */
import { describe, expect, it } from "vitest";
import {
  DETAIL_BYTES,
  type ErrorDetail,
  openErrorDetail,
  signErrorDetail,
} from "../../protocol/jose/error-detail.js";
import { signCompact } from "../../protocol/jose/lib/jws.js";

async function keyPair(): Promise<{ privateKey: CryptoKey; jwk: JsonWebKey }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, jwk: await crypto.subtle.exportKey("jwk", pair.publicKey) };
}

const nonce = "0f".repeat(16);
const detail: ErrorDetail = {
  code: "ERR_INGEST_SCHEMA",
  message: "ingest: row 7 column amount does not match its type",
  row: 7,
  column: "amount",
  dataset: "purchases",
};
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { code?: string }) => e.code,
  );

describe("error detail", () => {
  it("round-trips for the request it answers", async () => {
    const k = await keyPair();
    const sealed = await signErrorDetail(detail, k.privateKey, { inReplyTo: nonce });
    expect(await openErrorDetail(sealed, k.jwk, { inReplyTo: nonce })).toEqual(detail);
  });

  it("has one size whatever it says, so its ciphertext's length tells the host nothing", async () => {
    const k = await keyPair();
    const short = await signErrorDetail({ code: "ERR_MAX_RUNS", message: "x" }, k.privateKey, {
      inReplyTo: nonce,
    });
    const long = await signErrorDetail(
      { ...detail, message: "m".repeat(5000), column: "c".repeat(500), parameter: "p".repeat(500) },
      k.privateKey,
      { inReplyTo: nonce },
    );
    expect(short.length).toBe(DETAIL_BYTES);
    expect(long.length).toBe(DETAIL_BYTES);
    const opened = await openErrorDetail(long, k.jwk, { inReplyTo: nonce });
    expect(opened.message).toHaveLength(512);
    expect(opened.column).toHaveLength(128);
    // Text JSON must escape heavily cannot overflow the size either: its words are dropped.
    const escaped = await signErrorDetail({ ...detail, message: "\u0001".repeat(512) }, k.privateKey, {
      inReplyTo: nonce,
    });
    expect(escaped.length).toBe(DETAIL_BYTES);
    expect(await openErrorDetail(escaped, k.jwk, { inReplyTo: nonce })).toEqual({
      code: detail.code,
      message: "detail too long",
    });
  });

  it("is refused under another key, for another request, or altered", async () => {
    const k = await keyPair();
    const other = await keyPair();
    const sealed = await signErrorDetail(detail, k.privateKey, { inReplyTo: nonce });
    expect(await codeOf(openErrorDetail(sealed, other.jwk, { inReplyTo: nonce }))).toBe(
      "ERR_RESPONSE_SIGNATURE",
    );
    expect(await codeOf(openErrorDetail(sealed, k.jwk, { inReplyTo: "1f".repeat(16) }))).toBe(
      "ERR_RESPONSE_SIGNATURE",
    );
    const altered = sealed.slice();
    altered[100]! ^= 1;
    expect(await codeOf(openErrorDetail(altered, k.jwk, { inReplyTo: nonce }))).toMatch(
      /^ERR_(RESPONSE_SIGNATURE|ENVELOPE)$/,
    );
    expect(await codeOf(openErrorDetail(sealed.subarray(1), k.jwk, { inReplyTo: nonce }))).toBe(
      "ERR_ENVELOPE",
    );
  });

  it("is refused with fields outside its closed shape, even when signed", async () => {
    const k = await keyPair();
    const signed = async (payload: object, typ = "cleanroom-error+jws") => {
      const jws = await signCompact(
        new TextEncoder().encode(JSON.stringify(payload)),
        { alg: "ES256", typ },
        k.privateKey,
      );
      const out = new Uint8Array(DETAIL_BYTES).fill(0x20);
      out.set(new TextEncoder().encode(jws));
      return out;
    };
    const base = { iat: 1, inReplyTo: nonce, error: { code: "ERR_USAGE", message: "m" } };
    expect(await codeOf(openErrorDetail(await signed(base), k.jwk, { inReplyTo: nonce }))).toBe("ok");
    for (const bad of [
      { ...base, extra: 1 },
      { ...base, error: { ...base.error, value: "alice@example.com" } },
      { ...base, error: { ...base.error, row: -1 } },
      { ...base, error: { ...base.error, column: 3 } },
      { ...base, error: { ...base.error, code: "not a code" } },
    ]) {
      expect(await codeOf(openErrorDetail(await signed(bad), k.jwk, { inReplyTo: nonce }))).toBe(
        "ERR_ENVELOPE",
      );
    }
    // A response JWS (another typ) is not a detail, whatever it carries.
    expect(
      await codeOf(
        openErrorDetail(await signed(base, "cleanroom-response+jws"), k.jwk, { inReplyTo: nonce }),
      ),
    ).toBe("ERR_RESPONSE_SIGNATURE");
  });
});
