import { readFileSync } from "node:fs";
import { decode } from "cborg";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { concatBytes, fromHex, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import { verifyEvidence } from "../../attestation/evidence.js";
import { createSimNitroRoot, type SimNitroRoot, signSimNitroDocument } from "../../attestation/sim/nitro.js";
import { createNsmProvider } from "../../enclave/platform/nsm.js";
import {
  decodeAttestationResponse,
  encodeAttestationRequest,
  NSM_ERROR_CODES,
} from "../../enclave/platform/nsm-cbor.js";
import type { NsmTransport } from "../../enclave/platform/nsm-ioctl.js";
import { PlatformError } from "../../enclave/platform/platform-error.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
/** CBOR heads written out by hand (RFC 8949 §3), so the expected bytes do not come from cborg. */
const tstr = (s: string): Uint8Array => concatBytes(new Uint8Array([0x60 + s.length]), text(s));
const bstr = (b: Uint8Array): Uint8Array =>
  concatBytes(
    b.length < 24
      ? new Uint8Array([0x40 + b.length])
      : b.length < 256
        ? new Uint8Array([0x58, b.length])
        : new Uint8Array([0x59, b.length >> 8, b.length & 0xff]),
    b,
  );
const NULL = new Uint8Array([0xf6]);
const map = (n: number): Uint8Array => new Uint8Array([0xa0 + n]);

const reportData = new Uint8Array(64).map((_, i) => i);
const nonce = fromHex("00112233445566778899aabbccddeeff");

function expectPlatform(f: () => unknown, reason: string, detail?: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PlatformError);
    expect((e as PlatformError).code).toBe("ERR_PLATFORM");
    expect((e as PlatformError).reason).toBe(reason);
    expect((e as PlatformError).detail).toBe(detail);
    return;
  }
  expect.unreachable("no PlatformError thrown");
}

describe("NSM request encoding", () => {
  it("writes the exact bytes of the reference client's Attestation request", () => {
    const expected = concatBytes(
      map(1),
      tstr("Attestation"),
      map(3),
      tstr("user_data"),
      bstr(reportData),
      tstr("nonce"),
      bstr(nonce),
      tstr("public_key"),
      NULL,
    );
    expect(toHex(encodeAttestationRequest({ userData: reportData, nonce }))).toBe(toHex(expected));
  });

  it("writes null for absent fields and keeps field order", () => {
    const pk = new Uint8Array(91).fill(3);
    const expected = concatBytes(
      map(1),
      tstr("Attestation"),
      map(3),
      tstr("user_data"),
      NULL,
      tstr("nonce"),
      NULL,
      tstr("public_key"),
      bstr(pk),
    );
    expect(toHex(encodeAttestationRequest({ publicKey: pk }))).toBe(toHex(expected));
  });

  it("round-trips through a generic CBOR decoder for any field sizes up to 1024", () => {
    const field = fc.option(fc.uint8Array({ maxLength: 1024 }), { nil: undefined });
    fc.assert(
      fc.property(field, field, field, (userData, n, publicKey) => {
        const bytes = encodeAttestationRequest({
          ...(userData ? { userData } : {}),
          ...(n ? { nonce: n } : {}),
          ...(publicKey ? { publicKey } : {}),
        });
        const body = decode(bytes, { useMaps: true }).get("Attestation") as Map<string, Uint8Array | null>;
        expect([...body.keys()]).toEqual(["user_data", "nonce", "public_key"]);
        const hex = (v: Uint8Array | null | undefined) => (v ? toHex(v) : null);
        expect(hex(body.get("user_data"))).toBe(hex(userData));
        expect(hex(body.get("nonce"))).toBe(hex(n));
        expect(hex(body.get("public_key"))).toBe(hex(publicKey));
      }),
      { numRuns: 50 },
    );
  });

  it("refuses fields over 1024 bytes", () => {
    expect(() => encodeAttestationRequest({ userData: new Uint8Array(1025) })).toThrow(UsageError);
    expect(() => encodeAttestationRequest({ nonce: new Uint8Array(1025) })).toThrow(UsageError);
    expect(() => encodeAttestationRequest({ publicKey: new Uint8Array(1025) })).toThrow(UsageError);
  });
});

describe("NSM response decoding", () => {
  const realDocument = new Uint8Array(
    readFileSync(
      new URL("../../../shared/vectors/nitro/base-2024-11-30-public-key/attestation.cbor", import.meta.url),
    ),
  );
  const answer = (doc: Uint8Array) =>
    concatBytes(map(1), tstr("Attestation"), map(1), tstr("document"), bstr(doc));

  it("returns the document of an Attestation answer byte for byte (a real NSM document)", () => {
    expect(toHex(decodeAttestationResponse(answer(realDocument)))).toBe(toHex(realDocument));
  });

  it("turns each NSM error answer into a refused PlatformError naming the error", () => {
    for (const code of NSM_ERROR_CODES) {
      expectPlatform(
        () => decodeAttestationResponse(concatBytes(map(1), tstr("Error"), tstr(code))),
        "refused",
        code,
      );
    }
    expectPlatform(
      () => decodeAttestationResponse(concatBytes(map(1), tstr("Error"), tstr("Bogus"))),
      "refused",
      undefined,
    );
  });

  it("refuses answers of another shape", () => {
    const bad = [
      new Uint8Array([0xff]),
      concatBytes(answer(realDocument), new Uint8Array([0])), // trailing byte
      concatBytes(map(1), tstr("Attestation"), map(0)),
      concatBytes(map(1), tstr("Attestation"), map(1), tstr("document"), tstr("text")),
      concatBytes(map(1), tstr("Attestation"), map(1), tstr("document"), bstr(new Uint8Array())),
      concatBytes(map(1), tstr("Attestation"), map(2), tstr("document"), bstr(realDocument), tstr("x"), NULL),
      concatBytes(map(1), tstr("GetRandom"), map(1), tstr("random"), bstr(new Uint8Array(32))),
      concatBytes(map(2), tstr("Attestation"), NULL, tstr("Error"), tstr("InternalError")),
      concatBytes(map(1), tstr("Error"), new Uint8Array([0x01])),
      tstr("Attestation"),
    ];
    for (const b of bad) {
      try {
        decodeAttestationResponse(b);
        expect.unreachable("accepted a malformed answer");
      } catch (e) {
        expect(e).toBeInstanceOf(PlatformError);
        expect(["bad-output", "refused"]).toContain((e as PlatformError).reason);
      }
    }
  });
});

describe("NSM provider over an injected transport", () => {
  let sim: SimNitroRoot;
  beforeAll(async () => {
    sim = await createSimNitroRoot();
  });

  /** Behaves like the NSM: reads the CBOR request, signs a document over its fields. */
  const fakeNsm =
    (seen: Uint8Array[] = [], tamper?: (userData: Uint8Array) => Uint8Array): NsmTransport =>
    async (request) => {
      seen.push(request);
      const body = decode(request, { useMaps: true }).get("Attestation") as Map<string, Uint8Array>;
      const userData = tamper ? tamper(body.get("user_data")!) : body.get("user_data")!;
      const document = await signSimNitroDocument(sim, { userData, nonce: body.get("nonce")! });
      return concatBytes(map(1), tstr("Attestation"), map(1), tstr("document"), bstr(document));
    };

  it("returns Nitro evidence binding the report data and nonce, which verifies", async () => {
    const seen: Uint8Array[] = [];
    const provider = await createNsmProvider({ transport: fakeNsm(seen) });
    expect(provider.platform).toBe("nitro");
    expect(provider.simulated).toBe(false);
    const ev = await provider.getEvidence(reportData, nonce);
    expect(ev.platform).toBe("nitro");
    expect(toHex(seen[0]!)).toBe(toHex(encodeAttestationRequest({ userData: reportData, nonce })));
    const pcrs: Record<number, string> = {};
    for (const i of [0, 1, 2]) pcrs[i] = toHex(sim.pcrs.get(i)!);
    const result = await verifyEvidence(
      ev,
      { trustedSimRoots: [new Uint8Array(sim.root.rawData)], pcrs },
      reportData,
      nonce,
    );
    expect(result.errors).toEqual([]);
    expect(result.verified).toBe(true);
  });

  it("refuses a document that answers another request", async () => {
    const provider = await createNsmProvider({ transport: fakeNsm([], (u) => u.map((x) => x ^ 1)) });
    await expect(provider.getEvidence(reportData, nonce)).rejects.toMatchObject({
      code: "ERR_PLATFORM",
      reason: "bad-output",
    });
  });

  it("passes an NSM error answer up as a typed PlatformError", async () => {
    const transport: NsmTransport = async () => concatBytes(map(1), tstr("Error"), tstr("InvalidArgument"));
    const provider = await createNsmProvider({ transport });
    await expect(provider.getEvidence(reportData, nonce)).rejects.toMatchObject({
      code: "ERR_PLATFORM",
      reason: "refused",
      detail: "InvalidArgument",
    });
  });

  it("refuses wrong-size report data and oversize or empty nonces without calling the NSM", async () => {
    const seen: Uint8Array[] = [];
    const provider = await createNsmProvider({ transport: fakeNsm(seen) });
    await expect(provider.getEvidence(new Uint8Array(65), nonce)).rejects.toBeInstanceOf(UsageError);
    await expect(provider.getEvidence(new Uint8Array(63), nonce)).rejects.toBeInstanceOf(UsageError);
    await expect(provider.getEvidence(reportData, new Uint8Array(1025))).rejects.toBeInstanceOf(UsageError);
    await expect(provider.getEvidence(reportData, new Uint8Array(0))).rejects.toBeInstanceOf(UsageError);
    expect(seen).toEqual([]);
  });

  it("accepts a 1024-byte nonce, the NSM maximum", async () => {
    const provider = await createNsmProvider({ transport: fakeNsm() });
    const big = new Uint8Array(1024).fill(9);
    const ev = await provider.getEvidence(reportData, big);
    expect(ev.evidence.length).toBeGreaterThan(1024);
  });
});
