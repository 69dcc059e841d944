import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { EvidenceFormatError, UsageError } from "../../attestation/errors.js";
import { productFromCpuid } from "../../attestation/snp/product.js";
import {
  decodePolicy,
  encodePolicy,
  encodeReport,
  parseReport,
  placeSignature,
  REPORT_SIZE,
  type SnpReportFields,
} from "../../attestation/snp/report.js";
import { decodeTcb, encodeTcb } from "../../attestation/snp/tcb.js";
import { loadVector, provenanceField, readVectorFile, VECTOR_NAMES } from "./vectors.js";

const hexField = (name: string, field: string): string => provenanceField(name, field).split(" ")[0]!;
const tcbField = (name: string, field: string): bigint => BigInt(hexField(name, field));

describe("parseReport on the real vectors", () => {
  for (const name of VECTOR_NAMES) {
    it(`${name}: fields equal provenance.md`, () => {
      const r = parseReport(loadVector(name).report);
      expect(r.version).toBe(Number(provenanceField(name, "version")));
      expect(r.vmpl).toBe(Number(provenanceField(name, "vmpl")));
      expect(r.guestSvn).toBe(Number(provenanceField(name, "guest_svn")));
      expect(r.policy).toBe(BigInt(hexField(name, "policy")));
      expect(r.platformInfo).toBe(BigInt(hexField(name, "platform_info")));
      expect(toHex(r.measurement)).toBe(provenanceField(name, "measurement"));
      expect(toHex(r.reportData)).toBe(provenanceField(name, "report_data"));
      expect(toHex(r.hostData)).toBe(provenanceField(name, "host_data"));
      expect(toHex(r.reportId)).toBe(provenanceField(name, "report_id"));
      expect(toHex(r.reportIdMa)).toBe(provenanceField(name, "report_id_ma"));
      expect(toHex(r.chipId)).toBe(provenanceField(name, "chip_id"));
      expect(r.currentTcb).toBe(tcbField(name, "current_tcb"));
      expect(r.reportedTcb).toBe(tcbField(name, "reported_tcb"));
      expect(r.committedTcb).toBe(tcbField(name, "committed_tcb"));
      expect(r.launchTcb).toBe(tcbField(name, "launch_tcb"));
      const fw = provenanceField(name, "current build.minor.major").split(" ")[0]!.split(".").map(Number);
      expect(r.currentVersion).toEqual({ build: fw[0], minor: fw[1], major: fw[2] });
      const signer = Number(hexField(name, "signer_info (0x48)"));
      expect(r.signerInfo.signingKey).toBe(["VCEK", "VLEK"][(signer >> 2) & 7]);
      expect(r.signerInfo.maskChipKey).toBe((signer & 2) !== 0);
      expect(r.policyFlags.debug).toBe(name.includes("debug"));
      if (r.version >= 3) {
        const [fam, mod, step] = provenanceField(name, "cpuid fam/mod/step (0x188..0x18A)")
          .split(" / ")
          .map(Number);
        expect(r.cpuid).toEqual({ family: fam, model: mod, stepping: step });
        expect(r.product).toBe(name.split("-")[0]![0]!.toUpperCase() + name.split("-")[0]!.slice(1));
      } else {
        expect(r.cpuid).toBeUndefined();
        expect(r.product).toBeUndefined();
      }
      expect(r.launchMitVector !== undefined).toBe(r.version >= 5);
      // Re-encoding the fields and placing the signature back gives the original bytes.
      const rs = r.signature;
      expect(placeSignature(encodeReport(r), rs)).toEqual(loadVector(name).report);
    });
  }
});

describe("TCB_VERSION", () => {
  it("turin-oak-v5 reported_tcb 0x4700000002000100 decodes with the Turin layout", () => {
    const r = parseReport(loadVector("turin-oak-v5").report);
    expect(r.reportedTcb).toBe(0x4700000002000100n);
    expect(decodeTcb(r.reportedTcb, "Turin")).toEqual({ fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 });
    // The Milan layout reads the same bytes differently (the README trap).
    expect(decodeTcb(r.reportedTcb, "Milan")).toEqual({ bl: 0, tee: 1, snp: 0, ucode: 71 });
  });
  it("milan-aws-vlek-v3 current and reported TCB differ in ucode only", () => {
    const r = parseReport(loadVector("milan-aws-vlek-v3").report);
    expect(decodeTcb(r.reportedTcb, "Milan")).toEqual({ bl: 4, tee: 0, snp: 24, ucode: 217 });
    expect(decodeTcb(r.currentTcb, "Milan")).toEqual({ bl: 4, tee: 0, snp: 24, ucode: 220 });
  });
  it("encodeTcb inverts decodeTcb", () => {
    const spl = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(spl, spl, spl, spl, spl, (bl, tee, snp, ucode, fmc) => {
        expect(decodeTcb(encodeTcb({ bl, tee, snp, ucode }, "Milan"), "Milan")).toEqual({
          bl,
          tee,
          snp,
          ucode,
        });
        expect(decodeTcb(encodeTcb({ fmc, bl, tee, snp, ucode }, "Turin"), "Turin")).toEqual({
          fmc,
          bl,
          tee,
          snp,
          ucode,
        });
      }),
    );
  });
  it("product from CPUID", () => {
    expect(productFromCpuid(0x19, 0x01)).toBe("Milan");
    expect(productFromCpuid(0x19, 0x11)).toBe("Genoa");
    expect(productFromCpuid(0x19, 0xa0)).toBe("Genoa");
    expect(productFromCpuid(0x1a, 0x02)).toBe("Turin");
    expect(productFromCpuid(0x1a, 0x12)).toBeUndefined();
    expect(productFromCpuid(0x17, 0x01)).toBeUndefined();
  });
});

describe("parseReport refuses malformed reports", () => {
  const base = loadVector("milan-oak-v3").report;
  const mutate = (f: (b: Uint8Array) => void): Uint8Array => {
    const b = base.slice();
    f(b);
    return b;
  };
  const cases: [string, Uint8Array][] = [
    ["short", base.slice(0, REPORT_SIZE - 1)],
    ["long", new Uint8Array(REPORT_SIZE + 1)],
    ["version 1", mutate((b) => (b[0] = 1))],
    ["version 6", mutate((b) => (b[0] = 6))],
    ["policy bit 17 clear", mutate((b) => (b[0x0a]! &= ~0x02))],
    ["policy bit 26 set", mutate((b) => (b[0x0b]! |= 0x04))],
    ["policy bit 63 set", mutate((b) => (b[0x0f]! |= 0x80))],
    ["signature algo 2", mutate((b) => (b[0x34] = 2))],
    ["signer info bit 5", mutate((b) => (b[0x48]! |= 0x20))],
    ["signing key 2", mutate((b) => (b[0x48] = 2 << 2))],
    ["reserved 0x04C", mutate((b) => (b[0x04c] = 1))],
    ["reserved 0x18B", mutate((b) => (b[0x18b] = 1))],
    ["reserved 0x1EB", mutate((b) => (b[0x1eb] = 1))],
    ["reserved 0x1F8 before v5", mutate((b) => (b[0x1f8] = 1))],
    ["reserved 0x29F", mutate((b) => (b[0x29f] = 1))],
    ["R padding", mutate((b) => (b[0x2d0] = 1))],
    ["S padding", mutate((b) => (b[0x32f] = 1))],
    ["after signature 0x330", mutate((b) => (b[0x330] = 1))],
    ["after signature 0x49F", mutate((b) => (b[0x49f] = 1))],
  ];
  for (const [label, bytes] of cases) {
    it(label, () => expect(() => parseReport(bytes)).toThrow(EvidenceFormatError));
  }
  it("v2: CPUID bytes are reserved", () => {
    const b = loadVector("milan-virtee-v2").report.slice();
    b[0x188] = 0x19;
    expect(() => parseReport(b)).toThrow(EvidenceFormatError);
  });
  it("Turin: CHIP_ID beyond 8 bytes must be zero", () => {
    const b = loadVector("turin-oak-v5").report.slice();
    b[0x1a8] = 1;
    expect(() => parseReport(b)).toThrow(EvidenceFormatError);
  });
  it("the tampered padding vector is refused at parse time", () => {
    const b = readVectorFile("milan-virtee-v2", "report.tampered-signature-padding.bin");
    expect(() => parseReport(b)).toThrow(EvidenceFormatError);
  });
});

describe("parseReport fuzzing raises only EvidenceFormatError", () => {
  const onlyFormatErrors = (b: Uint8Array): void => {
    try {
      parseReport(b);
    } catch (e) {
      expect(e).toBeInstanceOf(EvidenceFormatError);
    }
  };
  it("random bytes of random and of exact length", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1300 }), onlyFormatErrors));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: REPORT_SIZE, maxLength: REPORT_SIZE }), onlyFormatErrors),
    );
  });
  it("single-byte mutations of every real report", () => {
    const reports = VECTOR_NAMES.map((n) => loadVector(n).report);
    fc.assert(
      fc.property(
        fc.constantFrom(...reports),
        fc.integer({ min: 0, max: REPORT_SIZE - 1 }),
        fc.integer({ min: 0, max: 255 }),
        (r, at, v) => {
          const b = r.slice();
          b[at] = v;
          onlyFormatErrors(b);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u8 = fc.integer({ min: 0, max: 255 });
const fwArb = fc.record({ major: u8, minor: u8, build: u8 });
const policyArb = fc
  .record({
    abiMinor: u8,
    abiMajor: u8,
    smt: fc.boolean(),
    migrateMa: fc.boolean(),
    debug: fc.boolean(),
    singleSocket: fc.boolean(),
    cxlAllow: fc.boolean(),
    memAes256Xts: fc.boolean(),
    raplDis: fc.boolean(),
    ciphertextHiding: fc.boolean(),
    pageSwapDisable: fc.boolean(),
  })
  .map(encodePolicy);

const fieldsArb: fc.Arbitrary<SnpReportFields> = fc
  .record({
    version: fc.constantFrom(2, 3, 4, 5),
    guestSvn: u32,
    policy: policyArb,
    familyId: bytesOf(16),
    imageId: bytesOf(16),
    vmpl: u32,
    signatureAlgo: fc.constant(1),
    currentTcb: u64,
    platformInfo: u64,
    signerInfo: fc.record({
      authorKeyEn: fc.boolean(),
      maskChipKey: fc.boolean(),
      signingKey: fc.constantFrom("VCEK" as const, "VLEK" as const, "none" as const),
    }),
    reportData: bytesOf(64),
    measurement: bytesOf(48),
    hostData: bytesOf(32),
    idKeyDigest: bytesOf(48),
    authorKeyDigest: bytesOf(48),
    reportId: bytesOf(32),
    reportIdMa: bytesOf(32),
    reportedTcb: u64,
    cpuid: fc.record({ family: fc.constantFrom(0x19, 0x17), model: u8, stepping: u8 }),
    chipId: bytesOf(64),
    committedTcb: u64,
    currentVersion: fwArb,
    committedVersion: fwArb,
    launchTcb: u64,
    launchMitVector: u64,
    currentMitVector: u64,
  })
  .map((f) => {
    const out: SnpReportFields = { ...f };
    if (f.version < 3) delete out.cpuid;
    if (f.version < 5) {
      delete out.launchMitVector;
      delete out.currentMitVector;
    }
    return out;
  });

describe("encodeReport", () => {
  it("parse(encode(x)) returns x (fast-check)", () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const parsed = parseReport(encodeReport(f));
        const picked = Object.fromEntries(Object.keys(f).map((k) => [k, parsed[k as keyof typeof parsed]]));
        expect(picked).toEqual(f);
        expect(parsed.policyFlags).toEqual(decodePolicy(f.policy));
        expect(parsed.signature).toEqual(new Uint8Array(96));
      }),
      { numRuns: 300 },
    );
  });
  it("placeSignature writes r and s little-endian into the 72-byte slots", () => {
    fc.assert(
      fc.property(fieldsArb, bytesOf(96), (f, rs) => {
        const signed = placeSignature(encodeReport(f), rs);
        expect(parseReport(signed).signature).toEqual(rs);
        expect(signed[0x2a0]).toBe(rs[47]);
        expect(signed[0x2e8]).toBe(rs[95]);
      }),
      { numRuns: 100 },
    );
  });
  it("refuses fields that parseReport would refuse", () => {
    const f = { ...parseReport(loadVector("milan-oak-v3").report) };
    expect(() => encodeReport({ ...f, policy: 0n })).toThrow(UsageError);
    expect(() => encodeReport({ ...f, version: 2 })).toThrow(UsageError);
    expect(() => encodeReport({ ...f, measurement: new Uint8Array(47) })).toThrow(UsageError);
    expect(() => encodeReport({ ...f, launchMitVector: 0n, currentMitVector: 0n })).toThrow(UsageError);
  });
});
