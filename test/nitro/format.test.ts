import { encode } from "cborg";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes, toHex } from "../../attestation/bytes.js";
import { EvidenceFormatError, UsageError } from "../../attestation/errors.js";
import {
  decodeAttestationPayload,
  decodeCoseSign1,
  ES384_PROTECTED_HEADER,
  encodeAttestationPayload,
  encodeCoseSign1,
  encodeSigStructure,
  looksLikeNitro,
  type NitroDocument,
  parseNitro,
} from "../../attestation/nitro/index.js";
import { findBytes } from "../bytes.js";
import { vectors } from "./helpers.js";

const byName = (prefix: string) => vectors.find((v) => v.name.startsWith(prefix))!.bytes;
const EVERVAULT = byName("evervault-2022-10-13");

function expectFormatError(f: () => unknown): void {
  expect(f).toThrow(EvidenceFormatError);
}

describe("COSE_Sign1", () => {
  it.each(vectors)("$name: re-encoding the decoded envelope gives the received bytes", (v) => {
    const c = decodeCoseSign1(v.bytes);
    expect(c.tagged).toBe(false);
    expect(toHex(c.protectedHeader)).toBe("a1013822");
    expect(c.signature.length).toBe(96);
    expect(encodeCoseSign1(c.protectedHeader, c.payload, c.signature)).toEqual(v.bytes);
  });

  it("Sig_structure is 84 6a 'Signature1' 44 a1013822 40 59 LLLL payload", () => {
    const { payload } = decodeCoseSign1(EVERVAULT);
    const s = encodeSigStructure(ES384_PROTECTED_HEADER, payload);
    const len = payload.length.toString(16).padStart(4, "0");
    const prefix = `846a${toHex(new TextEncoder().encode("Signature1"))}44a10138224059${len}`;
    expect(toHex(s.subarray(0, prefix.length / 2))).toBe(prefix);
    expect(s.subarray(prefix.length / 2)).toEqual(payload);
  });

  it("accepts tag 18", () => {
    const c = decodeCoseSign1(concatBytes(new Uint8Array([0xd2]), EVERVAULT));
    expect(c.tagged).toBe(true);
    expect(c.payload).toEqual(decodeCoseSign1(EVERVAULT).payload);
  });

  it("refuses trailing bytes, other tags, truncation and empty input", () => {
    expectFormatError(() => decodeCoseSign1(concatBytes(EVERVAULT, new Uint8Array([0]))));
    expectFormatError(() => decodeCoseSign1(concatBytes(new Uint8Array([0xd1]), EVERVAULT)));
    expectFormatError(() => decodeCoseSign1(EVERVAULT.subarray(0, EVERVAULT.length - 1)));
    expectFormatError(() => decodeCoseSign1(new Uint8Array(0)));
  });

  it("refuses a wrong algorithm, a critical header, a non-empty unprotected header and a DER-sized signature", () => {
    const { payload, signature } = decodeCoseSign1(EVERVAULT);
    const es256 = encode(new Map([[1, -7]]));
    const crit = encode(
      new Map<number, unknown>([
        [1, -35],
        [2, [99]],
      ]),
    );
    expectFormatError(() => decodeCoseSign1(encodeCoseSign1(es256, payload, signature)));
    expectFormatError(() => decodeCoseSign1(encodeCoseSign1(crit, payload, signature)));
    expectFormatError(() =>
      decodeCoseSign1(encode([ES384_PROTECTED_HEADER, new Map([[1, -35]]), payload, signature])),
    );
    expectFormatError(() =>
      decodeCoseSign1(encodeCoseSign1(ES384_PROTECTED_HEADER, payload, signature.subarray(0, 95))),
    );
    expectFormatError(() => decodeCoseSign1(encode([ES384_PROTECTED_HEADER, new Map(), payload])));
  });

  it("looksLikeNitro tells COSE_Sign1 from an SEV-SNP report", () => {
    for (const v of vectors) expect(looksLikeNitro(v.bytes)).toBe(true);
    expect(looksLikeNitro(concatBytes(new Uint8Array([0xd2]), EVERVAULT))).toBe(true);
    for (const version of [2, 3, 4, 5]) {
      const report = new Uint8Array(1184);
      report[0] = version;
      expect(looksLikeNitro(report)).toBe(false);
    }
    expect(looksLikeNitro(new Uint8Array(0))).toBe(false);
    expect(looksLikeNitro(new Uint8Array([0x84]))).toBe(false);
  });
});

describe("attestation document payload", () => {
  it("dstack: the indefinite-length payload map parses and verifies as received", () => {
    const { cose, document } = parseNitro(byName("dstack"));
    expect(cose.payload[0]).toBe(0xbf);
    expect(cose.payload[cose.payload.length - 1]).toBe(0xff);
    expect(document.userData).toEqual(new Uint8Array(64));
    expect(document.nonce).toBeNull();
  });

  it("uid2: explicit nulls parse as null", () => {
    const { cose, document } = parseNitro(byName("uid2"));
    expect(toHex(cose.payload)).toContain(`6a7075626c69635f6b6579f6`); // "public_key": null
    expect(document.publicKey).toBeNull();
    expect(document.userData).toBeNull();
    expect(document.nonce).toBeNull();
  });

  it("blocky: 1024-byte public_key, user_data and nonce are accepted", () => {
    const { document } = parseNitro(byName("blocky"));
    expect(document.publicKey?.length).toBe(1024);
    expect(document.userData?.length).toBe(1024);
    expect(document.nonce?.length).toBe(1024);
  });

  it("evervault debug: ASCII public_key is kept as bytes", () => {
    const { document } = parseNitro(byName("evervault-2022-10-12"));
    expect(new TextDecoder().decode(document.publicKey!)).toBe("my super secret key");
    expect(new TextDecoder().decode(document.userData!)).toBe("hello, world!");
  });

  it.each(vectors)("$name: PCR0..PCR15 of 48 bytes, 4-certificate bundle", (v) => {
    const { document } = parseNitro(v.bytes);
    expect([...document.pcrs.keys()]).toEqual([...Array(16).keys()]);
    for (const pcr of document.pcrs.values()) expect(pcr.length).toBe(48);
    expect(document.cabundle.length).toBe(4);
  });

  const base = parseNitro(EVERVAULT).document;
  const reencode = (patch: Record<string, unknown>): Uint8Array => {
    const m = decodeForTest(encodeAttestationPayload(base));
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) m.delete(k);
      else m.set(k, v);
    }
    return encode(m);
  };

  it("a duplicate map key is refused", () => {
    const payload = encodeAttestationPayload(base);
    expect(payload[0]).toBe(0xa9);
    // Same nine entries plus a second "nonce": header a9 → aa, then the extra pair appended.
    const dup = concatBytes(
      new Uint8Array([0xaa]),
      payload.subarray(1),
      encode("nonce"),
      new Uint8Array([0xf6]),
    );
    expectFormatError(() => decodeAttestationPayload(dup));
    // The same bytes without the duplicate decode, so it is the duplicate that is refused.
    expect(() => decodeAttestationPayload(payload)).not.toThrow();
  });

  it("an indefinite-length map of the same entries decodes to the same document", () => {
    const payload = encodeAttestationPayload(base);
    const indefinite = concatBytes(new Uint8Array([0xbf]), payload.subarray(1), new Uint8Array([0xff]));
    expect(decodeAttestationPayload(indefinite)).toEqual(decodeAttestationPayload(payload));
  });

  it.each([
    ["missing module_id", { module_id: undefined }],
    ["empty module_id", { module_id: "" }],
    ["digest SHA256", { digest: "SHA256" }],
    ["zero timestamp", { timestamp: 0 }],
    ["negative timestamp", { timestamp: -1 }],
    ["text timestamp", { timestamp: "1665651482136" }],
    ["pcrs empty", { pcrs: new Map() }],
    ["pcr index 32", { pcrs: new Map([[32, new Uint8Array(48)]]) }],
    ["pcr index text", { pcrs: new Map([["0", new Uint8Array(48)]]) }],
    ["pcr of 47 bytes", { pcrs: new Map([[0, new Uint8Array(47)]]) }],
    ["certificate as text", { certificate: "x" }],
    ["certificate of 1025 bytes", { certificate: new Uint8Array(1025) }],
    ["empty cabundle", { cabundle: [] }],
    ["empty cabundle entry", { cabundle: [new Uint8Array(0)] }],
    ["public_key empty", { public_key: new Uint8Array(0) }],
    ["user_data of 1025 bytes", { user_data: new Uint8Array(1025) }],
    ["nonce as text", { nonce: "abc" }],
    ["unknown key", { extra: 1 }],
  ])("refuses %s", (_name, patch) => {
    expectFormatError(() => decodeAttestationPayload(reencode(patch)));
  });

  it("refuses a float timestamp even when its value is an integer", () => {
    const payload = reencode({ timestamp: 1665651482136.5 });
    expectFormatError(() => decodeAttestationPayload(payload));
    // 0xfb + float64 of an integral value: swap in by hand, cborg would encode it as an integer.
    const f = new Uint8Array(9);
    f[0] = 0xfb;
    new DataView(f.buffer).setFloat64(1, base.timestamp);
    const intEnc = encode(base.timestamp);
    const bytes = encodeAttestationPayload(base);
    const at = findBytes(bytes, concatBytes(encode("timestamp"), intEnc)) + encode("timestamp").length;
    const swapped = concatBytes(bytes.subarray(0, at), f, bytes.subarray(at + intEnc.length));
    expectFormatError(() => decodeAttestationPayload(swapped));
  });

  it("optional fields may be absent and read as null", () => {
    const doc = decodeAttestationPayload(
      reencode({ public_key: undefined, user_data: undefined, nonce: undefined }),
    );
    expect([doc.publicKey, doc.userData, doc.nonce]).toEqual([null, null, null]);
  });

  it("encodeAttestationPayload refuses a document the decoder would refuse", () => {
    expect(() => encodeAttestationPayload({ ...base, userData: new Uint8Array(1025) })).toThrow(UsageError);
    expect(() => encodeAttestationPayload({ ...base, pcrs: new Map() })).toThrow(UsageError);
  });

  it.each(vectors)("$name: encode(decode(payload)) reproduces NSM's definite-length payload bytes", (v) => {
    const { cose, document } = parseNitro(v.bytes);
    if (cose.payload[0] === 0xbf) {
      expect(encodeAttestationPayload(document)[0]).toBe(0xa9);
    } else {
      expect(encodeAttestationPayload(document)).toEqual(cose.payload);
    }
  });

  it("property: decode(encode(doc)) == doc", () => {
    const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
    const nullable = (a: fc.Arbitrary<Uint8Array>) => fc.option(a, { nil: null });
    const docArb: fc.Arbitrary<NitroDocument> = fc.record({
      moduleId: fc.string({ minLength: 1, maxLength: 64 }),
      digest: fc.constant("SHA384" as const),
      timestamp: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      pcrs: fc
        .uniqueArray(fc.tuple(fc.integer({ min: 0, max: 31 }), fc.constantFrom(32, 48, 64)), {
          minLength: 1,
          maxLength: 32,
          selector: ([i]) => i,
        })
        .chain((entries) =>
          fc
            .tuple(...entries.map(([, n]) => bytes(n, n)))
            .map(
              (values) =>
                new Map(entries.map(([i], k) => [i, values[k]!] as const).sort(([a], [b]) => a - b)),
            ),
        ),
      certificate: bytes(1, 1024),
      cabundle: fc.array(bytes(1, 1024), { minLength: 1, maxLength: 4 }),
      publicKey: nullable(bytes(1, 1024)),
      userData: nullable(bytes(0, 1024)),
      nonce: nullable(bytes(0, 1024)),
    });
    fc.assert(
      fc.property(docArb, (doc) => {
        expect(decodeAttestationPayload(encodeAttestationPayload(doc))).toEqual(doc);
      }),
      { numRuns: 200 },
    );
  });
});

function decodeForTest(payload: Uint8Array): Map<string, unknown> {
  // Through the product decoder's shape: rebuild a plain Map of the nine keys.
  const d = decodeAttestationPayload(payload);
  return new Map<string, unknown>([
    ["module_id", d.moduleId],
    ["digest", d.digest],
    ["timestamp", d.timestamp],
    ["pcrs", d.pcrs],
    ["certificate", d.certificate],
    ["cabundle", d.cabundle],
    ["public_key", d.publicKey],
    ["user_data", d.userData],
    ["nonce", d.nonce],
  ]);
}
