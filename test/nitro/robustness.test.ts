import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCleanroomError } from "../../attestation/errors.js";
import { decodeCoseSign1, parseNitro, verifyNitro } from "../../attestation/nitro/index.js";
import { ANY_IMAGE, timestampOf, vectors } from "./helpers.js";

const PROD = vectors.find((v) => v.name.startsWith("evervault-2022-10-13"))!.bytes;
const at = timestampOf(PROD);
// Where the signed payload sits inside the envelope: 84 44 a1013822 a0 59 LLLL <payload> 58 60 <sig>.
const payloadLength = decodeCoseSign1(PROD).payload.length;
const payloadStart = 1 + 5 + 1 + 3;
const ENVELOPE_CODES = new Set([
  "ERR_EVIDENCE_FORMAT",
  "ERR_CERTIFICATE",
  "ERR_UNTRUSTED_ROOT",
  "ERR_SIMULATED_EVIDENCE",
  "ERR_SIGNATURE",
]);

function mutate(bytes: Uint8Array, index: number, xor: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= xor;
  return out;
}

/** parseNitro either returns or throws one of ours; anything else is a bug. */
function parseOnlyThrowsOurs(bytes: Uint8Array): void {
  try {
    parseNitro(bytes);
  } catch (e) {
    expect(isCleanroomError(e)).toBe(true);
  }
}

async function verifyNeverThrows(bytes: Uint8Array): Promise<void> {
  const r = await verifyNitro(bytes, { ...ANY_IMAGE, at, allowDebug: true });
  for (const e of r.errors) expect(ENVELOPE_CODES.has(e.code) || e.code === "ERR_POLICY").toBe(true);
}

describe("robustness", () => {
  it("sanity: the payload offset is right", () => {
    expect(PROD.subarray(payloadStart - 3, payloadStart)).toEqual(
      new Uint8Array([0x59, payloadLength >> 8, payloadLength & 0xff]),
    );
  });

  it("property: any single-byte change in the signed payload or protected header is refused", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: payloadStart, max: payloadStart + payloadLength - 1 }),
          fc.integer({ min: 2, max: 5 }),
        ),
        fc.integer({ min: 1, max: 255 }),
        async (index, xor) => {
          const r = await verifyNitro(mutate(PROD, index, xor), { ...ANY_IMAGE, at });
          expect(r.verified).toBe(false);
          for (const e of r.errors) expect(ENVELOPE_CODES.has(e.code)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("property: random bytes only ever raise our errors (mostly format errors), quickly", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (bytes) => {
        parseOnlyThrowsOurs(bytes);
        const r = await verifyNitro(bytes, ANY_IMAGE);
        expect(r.verified).toBe(false);
        expect(r.errors.map((e) => e.code)).toEqual(["ERR_EVIDENCE_FORMAT"]);
      }),
      { numRuns: 500 },
    );
  });

  it("property: random CBOR-ish prefixes (0x84 arrays, tags, indefinite items) only raise our errors", async () => {
    const prefix = fc.constantFrom(
      [0x84],
      [0xd2, 0x84],
      [0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0],
      [0x9f, 0x9f, 0x9f],
      [0xbf],
      [0x5f, 0x41],
    );
    await fc.assert(
      fc.asyncProperty(prefix, fc.uint8Array({ maxLength: 256 }), async (p, rest) => {
        const bytes = new Uint8Array([...p, ...rest]);
        parseOnlyThrowsOurs(bytes);
        await verifyNeverThrows(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it("property: mutated real documents (flips, truncation, insertion) only raise our errors", async () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), xor: fc.constant(0) }),
      fc.record({
        kind: fc.constant("insert" as const),
        at: fc.nat(),
        xor: fc.integer({ min: 0, max: 255 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...vectors.map((v) => v.bytes)),
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        async (doc, edits) => {
          let bytes = doc;
          for (const e of edits) {
            const i = e.at % bytes.length;
            if (e.kind === "flip") bytes = mutate(bytes, i, e.xor);
            else if (e.kind === "cut") bytes = bytes.subarray(0, i);
            else bytes = new Uint8Array([...bytes.subarray(0, i), e.xor, ...bytes.subarray(i)]);
            if (bytes.length === 0) break;
          }
          parseOnlyThrowsOurs(bytes);
          await verifyNeverThrows(bytes);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("deep nesting is a format error, not a crash", async () => {
    const deep = new Uint8Array(17_000).fill(0x81);
    parseOnlyThrowsOurs(deep);
    expect((await verifyNitro(deep, ANY_IMAGE)).errors.map((e) => e.code)).toEqual(["ERR_EVIDENCE_FORMAT"]);
    const indefinite = new Uint8Array(17_000).fill(0x9f);
    expect((await verifyNitro(indefinite, ANY_IMAGE)).errors.map((e) => e.code)).toEqual([
      "ERR_EVIDENCE_FORMAT",
    ]);
  });

  it("huge declared lengths fail fast", async () => {
    const claims = [
      [0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0x9b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
      [0xbb, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
    ];
    for (const c of claims) {
      const t = performance.now();
      expect((await verifyNitro(new Uint8Array(c), ANY_IMAGE)).errors.map((e) => e.code)).toEqual([
        "ERR_EVIDENCE_FORMAT",
      ]);
      expect(performance.now() - t).toBeLessThan(1000);
    }
  });
});
