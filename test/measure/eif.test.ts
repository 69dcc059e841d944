import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "cborg";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes, sha256, sha384, toHex } from "../../attestation/bytes.js";
import { isCleanroomError } from "../../attestation/errors.js";
import { crc32 } from "../../attestation/measure/crc32.js";
import { computeEifPcrs } from "../../attestation/measure/eif.js";
import { buildEif } from "../../attestation/measure/eif-build.js";
import { EIF_HEADER_SIZE, H, parseEif } from "../../attestation/measure/eif-format.js";
import { EifFormatError } from "../../attestation/measure/errors.js";
import { skipWithout } from "../tools.js";

const DIR = new URL("../../../shared/vectors/eif/", import.meta.url);
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(new URL(rel, DIR)));

interface Expected {
  file: string;
  bytes: number;
  sha256: string;
  crc32: string;
  PCR0: string;
  PCR1: string;
  PCR2: string;
}
const expected = JSON.parse(readFileSync(new URL("expected.json", DIR), "utf8")) as Record<string, Expected>;
const vectors = (["one-ramdisk", "two-ramdisks"] as const).map((k) => [k, expected[k]!] as const);

const parts = {
  kernel: read("parts/kernel.bin"),
  cmdline: new TextDecoder().decode(read("parts/cmdline.txt")),
  metadata: read("parts/metadata.json"),
  ramdisks: [read("parts/ramdisk0.bin"), read("parts/ramdisk1.bin")],
};

function hexPcrs(p: { PCR0: Uint8Array; PCR1: Uint8Array; PCR2: Uint8Array }) {
  return { PCR0: toHex(p.PCR0), PCR1: toHex(p.PCR1), PCR2: toHex(p.PCR2) };
}

describe("EIF vectors", () => {
  it.each(vectors)("%s: parses, CRC valid, PCRs as expected", async (_k, e) => {
    const bytes = read(e.file);
    expect(toHex(await sha256(bytes))).toBe(e.sha256);
    const eif = parseEif(bytes);
    expect(eif.crc32).toBe(Number(e.crc32));
    expect(eif.version).toBe(4);
    expect(eif.arch).toBe("x86_64");
    expect(eif.metadata).toEqual(parts.metadata);
    expect(hexPcrs(await computeEifPcrs(bytes))).toEqual({ PCR0: e.PCR0, PCR1: e.PCR1, PCR2: e.PCR2 });
    expect((await computeEifPcrs(eif)).PCR8).toBeUndefined();
  });

  it.each(vectors)("%s: rebuilt from parts/ byte for byte", async (k, e) => {
    const ramdisks = k === "one-ramdisk" ? parts.ramdisks.slice(0, 1) : parts.ramdisks;
    const built = buildEif({ ...parts, ramdisks });
    expect(toHex(built)).toBe(toHex(read(e.file)));
    expect(hexPcrs(await computeEifPcrs(built))).toEqual({ PCR0: e.PCR0, PCR1: e.PCR1, PCR2: e.PCR2 });
  });

  it("writes metadata given as a value as compact JSON", () => {
    const metadata = JSON.parse(new TextDecoder().decode(parts.metadata)) as Record<string, unknown>;
    expect(buildEif({ ...parts, metadata })).toEqual(buildEif(parts));
  });

  it("PCRs ignore metadata but the file and CRC do not", async () => {
    const a = buildEif(parts);
    const b = buildEif({ ...parts, metadata: { ImageName: "other" } });
    expect(hexPcrs(await computeEifPcrs(a))).toEqual(hexPcrs(await computeEifPcrs(b)));
    expect(parseEif(a).crc32).not.toBe(parseEif(b).crc32);
  });

  it("PCR8 is the extended SHA-384 of the signing certificate's DER", async (ctx) => {
    skipWithout(ctx, "openssl");
    // An openssl-made certificate, so the PEM → DER conversion is checked against openssl's DER.
    const dir = mkdtempSync(join(tmpdir(), "eif-sig-"));
    const key = join(dir, "key.pem");
    const crt = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        key,
        "-out",
        crt,
        "-subj",
        "/CN=eif signer",
        "-days",
        "1",
      ],
      { stdio: "ignore" },
    );
    const pem = new Uint8Array(readFileSync(crt));
    const der = new Uint8Array(execFileSync("openssl", ["x509", "-in", crt, "-outform", "DER"]));
    // serde's Vec<u8> is a CBOR array of integers; the COSE bytes are not verified by PCR8.
    const signature = encode([{ signing_certificate: Array.from(pem), signature: [0xd2, 0x84] }]);
    const signed = await computeEifPcrs(buildEif({ ...parts, signature }));
    expect(toHex(signed.PCR8!)).toBe(toHex(await sha384(concatBytes(new Uint8Array(48), await sha384(der)))));
    expect(hexPcrs(signed)).toEqual(hexPcrs(await computeEifPcrs(buildEif(parts))));

    const bad = buildEif({ ...parts, signature: encode([{ signing_certificate: "pem", signature: [] }]) });
    await expect(computeEifPcrs(bad)).rejects.toBeInstanceOf(EifFormatError);
  });
});

describe("EIF corruption raises only typed errors", () => {
  const good = buildEif(parts);
  const refuses = (b: Uint8Array): void => {
    expect(() => parseEif(b)).toThrow(EifFormatError);
  };

  it("crc32 is the zlib CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode("1234"), new TextEncoder().encode("56789"))).toBe(0xcbf43926);
  });

  it("bad magic, bad CRC, truncation, trailing bytes", () => {
    const magic = good.slice();
    magic[0] = 0x2f;
    refuses(magic);
    const crc = good.slice();
    crc[H.crc32 + 3]! ^= 1;
    refuses(crc);
    const payload = good.slice();
    payload[good.length - 1]! ^= 0x80;
    refuses(payload);
    refuses(good.subarray(0, good.length - 1));
    refuses(good.subarray(0, EIF_HEADER_SIZE - 1));
    refuses(concatBytes(good, new Uint8Array(1)));
  });

  it("any byte flip is refused with EifFormatError (CRC covers every byte)", () => {
    fc.assert(
      fc.property(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = good.slice();
        b[at]! ^= x;
        refuses(b);
      }),
      { numRuns: 300 },
    );
  });

  it("arbitrary truncations and splices never throw untyped errors", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: good.length }),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat({ max: good.length }),
        async (cut, junk, at) => {
          const b = concatBytes(good.subarray(0, Math.min(at, cut)), junk, good.subarray(cut));
          try {
            await computeEifPcrs(b);
          } catch (e) {
            expect(isCleanroomError(e) && e.code === "ERR_EIF_FORMAT").toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("structurally wrong images with a valid CRC are refused", () => {
    expect(() => buildEif({ ...parts, ramdisks: [] })).toThrow(EifFormatError);
    const reseal = (b: Uint8Array): Uint8Array => {
      new DataView(b.buffer).setUint32(H.crc32, crc32(b.subarray(0, H.crc32), b.subarray(EIF_HEADER_SIZE)));
      return b;
    };
    const edit = (f: (v: DataView) => void): Uint8Array => {
      const b = good.slice();
      f(new DataView(b.buffer));
      return reseal(b);
    };
    expect(parseEif(edit(() => {})).crc32).toBe(parseEif(good).crc32); // the helper itself is right
    const secondAt = Number(new DataView(good.buffer).getBigUint64(H.sectionOffsets + 8));
    refuses(edit((v) => v.setUint16(H.numSections, 2))); // trailing sections
    refuses(edit((v) => v.setUint16(H.numSections, 33)));
    refuses(edit((v) => v.setUint16(H.version, 5)));
    refuses(edit((v) => v.setUint16(H.flags, 2)));
    refuses(edit((v) => v.setUint16(secondAt, 1))); // two kernels, no cmdline
    refuses(edit((v) => v.setUint16(secondAt, 9))); // unknown type
    refuses(edit((v) => v.setUint16(secondAt + 2, 1))); // section flags
    refuses(edit((v) => v.setBigUint64(H.sectionSizes + 8, 1n))); // table vs section header
    refuses(edit((v) => v.setBigUint64(H.sectionOffsets + 8, 2n ** 63n)));
    refuses(edit((v) => v.setBigUint64(H.sectionOffsets + 31 * 8, 1n))); // unused slot
  });
});
