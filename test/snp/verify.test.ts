import { beforeAll, describe, expect, it, vi } from "vitest";
import { bytesEqual, sha256 } from "../../attestation/bytes.js";
import { parseCertificate, toDer } from "../../attestation/snp/certs.js";
import {
  encodeCertTable,
  GUID_ARK,
  GUID_ASK,
  GUID_VCEK,
  GUID_VLEK,
} from "../../attestation/snp/certtable.js";
import { unwrapAzureHclReport } from "../../attestation/snp/hcl.js";
import { clearChainCache, parseReport, verifyReportChain, verifySnp } from "../../attestation/snp/index.js";
import {
  encodePolicy,
  encodeReport,
  placeSignature,
  type SnpReportFields,
} from "../../attestation/snp/report.js";
import { encodeTcb, type TcbVersion } from "../../attestation/snp/tcb.js";
import { makeSimChain, type SimChain } from "./simchain.js";
import { loadVector, readVectorFile, type SnpVector, VECTOR_NAMES } from "./vectors.js";

/** Per-vector configuration (not weakening): the debug vector and the VMPL-1 AWS guest. */
const POLICY: Record<string, { allowDebug?: boolean; maxVmpl?: number }> = {
  "milan-gosevguest-v2-debug": { allowDebug: true },
  "milan-aws-vlek-v3": { maxVmpl: 1 },
};

const evidence = (v: SnpVector, report = v.report) => ({ report, vcek: v.leaf, ask: v.ask, ark: v.ark });
const productOf = (name: string): string => name[0]!.toUpperCase() + name.slice(1, name.indexOf("-"));
const codes = (r: { errors: { code: string }[] }): string[] => r.errors.map((e) => e.code);
const failedCheck = (r: { checks: { name: string; ok: boolean }[] }): string | undefined =>
  r.checks.find((c) => !c.ok)?.name;

describe("every real report verifies", () => {
  for (const name of VECTOR_NAMES) {
    it(`${name} with its own chain`, async () => {
      const v = loadVector(name);
      const res = await verifySnp(evidence(v), { at: v.at, ...POLICY[name] });
      expect(res.errors).toEqual([]);
      expect(res.verified).toBe(true);
      expect(res.simulated).toBe(false);
      expect(res.claims["product"]).toBe(productOf(name));
      expect(res.claims["signingKey"]).toBe(v.leafKind);
      expect(res.checks.every((c) => c.ok)).toBe(true);
      for (const step of [
        "report format",
        "ARK pinned",
        "ASK signed by ARK",
        "VCEK signed by ASK",
        "report signature",
      ]) {
        expect(res.checks.map((c) => c.name)).toContain(step);
      }
      expect(JSON.parse(JSON.stringify(res.claims))).toEqual(res.claims);
    });
    it(`${name} with only the leaf certificate (pinned ASK/ASVK and ARK)`, async () => {
      const v = loadVector(name);
      const res = await verifySnp({ report: v.report, vcek: v.leaf }, { at: v.at, ...POLICY[name] });
      expect(res.errors).toEqual([]);
      expect(res.claims["product"]).toBe(productOf(name));
    });
  }

  it("turin claims carry the 16-hex-character chip id and Turin TCB", async () => {
    const v = loadVector("turin-oak-v5");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(res.claims["chipId"]).toBe("3b42092f69c656d3");
    expect(res.claims["reportedTcb"]).toMatchObject({ fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 });
  });

  it("accepts PEM for the leaf and DER for ASK/ARK", async () => {
    const v = loadVector("milan-oak-v3");
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(v.leaf).toString("base64")}\n-----END CERTIFICATE-----\n`;
    const res = await verifySnp(
      { report: v.report, vcek: new TextEncoder().encode(pem), ask: toDer(v.ask), ark: toDer(v.ark) },
      { at: v.at },
    );
    expect(res.verified).toBe(true);
  });
});

describe("policy on real reports", () => {
  it("milan-gosevguest-v2-debug: refused by default, accepted with allowDebug", async () => {
    const v = loadVector("milan-gosevguest-v2-debug");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(res.verified).toBe(false);
    expect(codes(res)).toEqual(["ERR_POLICY"]);
    expect(failedCheck(res)).toBe("debug disabled");
    expect(res.checks.find((c) => c.name === "report signature")?.ok).toBe(true);
    expect((await verifySnp(evidence(v), { at: v.at, allowDebug: true })).verified).toBe(true);
  });

  it("milan-aws-vlek-v3 (VMPL 1) is refused by the default maxVmpl 0", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(codes(res)).toEqual(["ERR_POLICY"]);
    expect(failedCheck(res)).toBe("vmpl");
  });

  it("measurement, report data, host data, minimum TCB and guest SVN", async () => {
    const v = loadVector("milan-virtee-v2");
    const r = parseReport(v.report);
    const ok = async (o: object) => (await verifySnp(evidence(v), { at: v.at, ...o })).verified;
    const other = r.measurement.slice();
    other[0]! ^= 1;
    expect(await ok({ measurements: [other, r.measurement] })).toBe(true);
    expect(await ok({ measurements: [Buffer.from(r.measurement).toString("hex")] })).toBe(true);
    expect(await ok({ measurements: [other] })).toBe(false);
    expect(await ok({ measurements: [] })).toBe(false);
    expect(await ok({ reportData: r.reportData })).toBe(true);
    expect(await ok({ reportData: new Uint8Array(64) })).toBe(false);
    expect(await ok({ hostData: new Uint8Array(32) })).toBe(true);
    // reported_tcb is bl=3 tee=0 snp=8 ucode=115
    expect(await ok({ minimumTcb: { bl: 3, snp: 8, ucode: 115 } })).toBe(true);
    expect(await ok({ minimumTcb: { ucode: 116 } })).toBe(false);
    expect(await ok({ minimumTcb: { fmc: 0 } })).toBe(false);
    expect(await ok({ minimumGuestSvn: 0 })).toBe(true);
    expect(await ok({ minimumGuestSvn: 1 })).toBe(false);
    expect(await ok({ requiredPolicyFlags: ["smt"] })).toBe(true);
    expect(await ok({ forbiddenPolicyFlags: ["smt"] })).toBe(false);
    expect(await ok({ requiredPolicyFlags: ["singleSocket"] })).toBe(false);
  });

  it("milan-aws-vlek-v3: minimum TCB is checked against REPORTED_TCB, not CURRENT_TCB", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const at = { at: v.at, maxVmpl: 1 };
    expect((await verifySnp(evidence(v), { ...at, minimumTcb: { ucode: 217 } })).verified).toBe(true);
    expect((await verifySnp(evidence(v), { ...at, minimumTcb: { ucode: 218 } })).verified).toBe(false);
  });

  it("milan-constellation-v2-idblock: report data bound to runtime_data.bin by a callback", async () => {
    const v = loadVector("milan-constellation-v2-idblock");
    const runtime = readVectorFile(v.name, "runtime_data.bin");
    const digest = await sha256(runtime);
    const binding = async (rd: Uint8Array) => bytesEqual(rd.subarray(0, 32), digest);
    expect((await verifySnp(evidence(v), { at: v.at, reportDataBinding: binding })).verified).toBe(true);
    const res = await verifySnp(evidence(v), { at: v.at, reportDataBinding: () => false });
    expect(failedCheck(res)).toBe("report data binding");
  });

  it("milan-azure-v3 through its HCL wrapper", async () => {
    const v = loadVector("milan-azure-v3");
    const { report, runtimeData } = unwrapAzureHclReport(readVectorFile(v.name, "hcl_report.bin"));
    expect(report).toEqual(v.report);
    const digest = await sha256(runtimeData);
    const res = await verifySnp(
      { report, vcek: v.leaf },
      { at: v.at, reportDataBinding: (rd) => bytesEqual(rd.subarray(0, 32), digest) },
    );
    expect(res.verified).toBe(true);
  });
});

describe("refusals", () => {
  const virtee = () => loadVector("milan-virtee-v2");

  it("every report.tampered-*.bin is refused", async () => {
    const v = virtee();
    const tampered = v.files.filter((f) => f.startsWith("report.tampered-"));
    expect(tampered.length).toBe(4);
    for (const f of tampered) {
      const res = await verifySnp(evidence(v, readVectorFile(v.name, f)), { at: v.at });
      expect(res.verified, f).toBe(false);
      expect(codes(res)[0], f).toBe(f.includes("padding") ? "ERR_EVIDENCE_FORMAT" : "ERR_SIGNATURE");
    }
  });

  it("every bit of the signed bytes and of R/S, flipped, is refused", async () => {
    const v = virtee();
    const certs = { vcek: v.leaf, ask: v.ask, ark: v.ark };
    await verifyReportChain(parseReport(v.report), certs, { at: v.at });
    let refused = 0;
    for (let i = 0; i < 0x330; i++) {
      for (let b = 0; b < 8; b++) {
        const bytes = v.report.slice();
        bytes[i]! ^= 1 << b;
        try {
          await verifyReportChain(parseReport(bytes), certs, { at: v.at });
        } catch {
          refused++;
        }
      }
    }
    expect(refused).toBe(0x330 * 8);
  });

  it("the VLEK after it expired is ERR_CERTIFICATE", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const after = new Date(parseCertificate(toDer(v.leaf)).notAfter.getTime() + 86_400_000);
    const res = await verifySnp(evidence(v), { at: after, maxVmpl: 1 });
    expect(codes(res)).toEqual(["ERR_CERTIFICATE"]);
    expect(failedCheck(res)).toBe("certificate validity");
    const before = await verifySnp(evidence(v), { at: new Date("2020-01-01T00:00:00Z"), maxVmpl: 1 });
    expect(codes(before)).toEqual(["ERR_CERTIFICATE"]);
  });

  it("an ARK that did not issue the ASK is ERR_UNTRUSTED_ROOT", async () => {
    const v = virtee();
    const genoaArk = loadVector("genoa-oak-v5").ark;
    const res = await verifySnp({ ...evidence(v), ark: genoaArk }, { at: v.at });
    expect(codes(res)).toEqual(["ERR_UNTRUSTED_ROOT"]);
    expect(failedCheck(res)).toBe("ARK pinned");
  });

  it("a swapped VCEK from another vector is refused", async () => {
    const oak = loadVector("milan-oak-v3");
    const virteeV = virtee();
    const res = await verifySnp({ ...evidence(oak), vcek: virteeV.leaf }, { at: virteeV.at });
    expect(res.verified).toBe(false);
    expect(codes(res)).toEqual(["ERR_SIGNATURE"]);
    const genoa = loadVector("genoa-oak-v2-2024");
    const cross = await verifySnp({ report: genoa.report, vcek: virteeV.leaf }, { at: virteeV.at });
    expect(cross.verified).toBe(false);
  });

  it("a configured product that disagrees with CPUID or the chain is refused", async () => {
    const v = loadVector("milan-oak-v3");
    expect((await verifySnp(evidence(v), { at: v.at, product: "Genoa" })).verified).toBe(false);
    const v2 = virtee();
    expect((await verifySnp(evidence(v2), { at: v2.at, product: "Genoa" })).verified).toBe(false);
  });

  it("a missing leaf certificate is reported, not thrown", async () => {
    const v = virtee();
    const res = await verifySnp({ report: v.report }, { at: v.at });
    expect(failedCheck(res)).toBe("certificates present");
  });

  it("garbage report and garbage certificates are reported, not thrown", async () => {
    const v = virtee();
    expect(codes(await verifySnp({ report: new Uint8Array(10), vcek: v.leaf }))).toEqual([
      "ERR_EVIDENCE_FORMAT",
    ]);
    const res = await verifySnp(
      { report: v.report, vcek: new Uint8Array([0x30, 0x03, 1, 2, 3]) },
      { at: v.at },
    );
    expect(codes(res)).toEqual(["ERR_CERTIFICATE"]);
    const pem = new TextEncoder().encode("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----");
    expect(codes(await verifySnp({ report: v.report, vcek: pem }, { at: v.at }))).toEqual([
      "ERR_CERTIFICATE",
    ]);
  });
});

describe("extended-report certificate table", () => {
  it("takes VCEK, ASK and ARK from the table", async () => {
    const v = virtee();
    const certTable = encodeCertTable([
      { guid: GUID_VCEK, data: v.leaf },
      { guid: GUID_ASK, data: toDer(v.ask) },
      { guid: GUID_ARK, data: toDer(v.ark) },
    ]);
    expect((await verifySnp({ report: v.report, certTable }, { at: v.at })).verified).toBe(true);
  });
  it("takes a VLEK from the table", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const certTable = encodeCertTable([{ guid: GUID_VLEK, data: v.leaf }]);
    expect((await verifySnp({ report: v.report, certTable }, { at: v.at, maxVmpl: 1 })).verified).toBe(true);
  });
  function virtee() {
    return loadVector("milan-virtee-v2");
  }
});

describe("roots that are not pinned", () => {
  const tcb: TcbVersion = { bl: 3, tee: 0, snp: 8, ucode: 115 };
  const hwId = new Uint8Array(64).map((_, i) => i + 1);
  let sim: SimChain;
  let evil: SimChain;
  let key: CryptoKey;

  beforeAll(async () => {
    sim = makeSimChain("cleanroom-simulated", hwId, tcb);
    evil = makeSimChain("Evil Corp", hwId, tcb);
    key = await crypto.subtle.importKey(
      "pkcs8",
      sim.vcekKey as BufferSource,
      { name: "ECDSA", namedCurve: "P-384" },
      false,
      ["sign"],
    );
  });

  const simReport = async (over: Partial<SnpReportFields> = {}): Promise<Uint8Array> => {
    const base = parseReport(loadVector("milan-oak-v3").report);
    const fields: SnpReportFields = { ...base, chipId: hwId, reportedTcb: encodeTcb(tcb, "Milan"), ...over };
    const unsigned = encodeReport(fields);
    const sig = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-384" },
      key,
      unsigned.subarray(0, 0x2a0) as BufferSource,
    );
    return placeSignature(unsigned, new Uint8Array(sig));
  };
  const simEvidence = async (over: Partial<SnpReportFields> = {}) => ({
    report: await simReport(over),
    vcek: sim.vcek,
    ask: sim.ask,
    ark: sim.ark,
  });

  it("a simulated root is ERR_SIMULATED_EVIDENCE unless trusted explicitly, then simulated: true", async () => {
    const ev = await simEvidence();
    const refused = await verifySnp(ev);
    expect(codes(refused)).toEqual(["ERR_SIMULATED_EVIDENCE"]);
    expect(refused.errors[0]!.message).toBe(
      "evidence is from a simulated platform; trust its root explicitly to accept it",
    );
    const ok = await verifySnp(ev, { trustedArks: [sim.ark] });
    expect(ok.errors).toEqual([]);
    expect(ok.simulated).toBe(true);
    expect(ok.claims["product"]).toBe("Milan");
    // The cached chain does not carry trust over to a caller that does not trust the root.
    expect(codes(await verifySnp(ev))).toEqual(["ERR_SIMULATED_EVIDENCE"]);
    // Without the ARK in the evidence, the ASK's issuer name decides which error.
    expect(codes(await verifySnp({ report: ev.report, vcek: sim.vcek, ask: sim.ask }))).toEqual([
      "ERR_SIMULATED_EVIDENCE",
    ]);
  });

  it("another non-pinned root is ERR_UNTRUSTED_ROOT", async () => {
    const ev = { ...(await simEvidence()), vcek: evil.vcek, ask: evil.ask, ark: evil.ark };
    expect(codes(await verifySnp(ev))).toEqual(["ERR_UNTRUSTED_ROOT"]);
    expect(codes(await verifySnp({ ...ev, ark: undefined }))).toEqual(["ERR_UNTRUSTED_ROOT"]);
  });

  it("a trusted simulated ARK does not let a different chain through", async () => {
    const ev = { ...(await simEvidence()), vcek: evil.vcek, ask: evil.ask, ark: evil.ark };
    expect(codes(await verifySnp(ev, { trustedArks: [sim.ark] }))).toEqual(["ERR_UNTRUSTED_ROOT"]);
    // The simulated ASK under the evil ARK: the names do not chain.
    expect((await verifySnp({ ...ev, ask: sim.ask }, { trustedArks: [sim.ark, evil.ark] })).verified).toBe(
      false,
    );
  });

  it("the report's signing key kind must match the certificate (VLEK report, VCEK certificate)", async () => {
    const ev = await simEvidence({
      signerInfo: { authorKeyEn: false, maskChipKey: false, signingKey: "VLEK" },
    });
    const res = await verifySnp(ev, { trustedArks: [sim.ark] });
    expect(codes(res)).toEqual(["ERR_SIGNATURE"]);
    expect(failedCheck(res)).toBe("signing key matches certificate");
  });

  it("TCB and chip id must match the certificate; MASK_CHIP_KEY skips the chip id", async () => {
    const badTcb = await verifySnp(
      await simEvidence({ reportedTcb: encodeTcb({ ...tcb, ucode: 116 }, "Milan") }),
      {
        trustedArks: [sim.ark],
      },
    );
    expect(failedCheck(badTcb)).toBe("TCB matches certificate");
    const otherChip = await verifySnp(await simEvidence({ chipId: new Uint8Array(64).fill(9) }), {
      trustedArks: [sim.ark],
    });
    expect(failedCheck(otherChip)).toBe("chip id matches certificate");
    const masked = await verifySnp(
      await simEvidence({
        chipId: new Uint8Array(64),
        signerInfo: { authorKeyEn: false, maskChipKey: true, signingKey: "VCEK" },
      }),
      { trustedArks: [sim.ark] },
    );
    expect(masked.verified).toBe(true);
    expect(masked.checks.find((c) => c.name === "chip id matches certificate")?.detail).toBe("masked");
  });

  it("MIGRATE_MA is refused unless allowed", async () => {
    const policy = encodePolicy({
      ...parseReport(loadVector("milan-oak-v3").report).policyFlags,
      migrateMa: true,
    });
    const ev = await simEvidence({ policy });
    const res = await verifySnp(ev, { trustedArks: [sim.ark] });
    expect(failedCheck(res)).toBe("migration agent refused");
    expect((await verifySnp(ev, { trustedArks: [sim.ark], allowMigrateMa: true })).verified).toBe(true);
  });
});

describe("chain cache", () => {
  it("a warm verification imports no key and checks only the report signature", async () => {
    const v = loadVector("genoa-oak-v5");
    clearChainCache();
    await verifySnp(evidence(v), { at: v.at });
    const importKey = vi.spyOn(crypto.subtle, "importKey");
    const verify = vi.spyOn(crypto.subtle, "verify");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(res.verified).toBe(true);
    expect(importKey).not.toHaveBeenCalled();
    expect(verify).toHaveBeenCalledTimes(1);
    expect(verify.mock.calls[0]![0]).toMatchObject({ name: "ECDSA" });
    importKey.mockRestore();
    verify.mockRestore();
  });
  it("a warm chain still checks validity against the new time", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    await verifySnp(evidence(v), { at: v.at, maxVmpl: 1 });
    const res = await verifySnp(evidence(v), { at: new Date("2030-01-01T00:00:00Z"), maxVmpl: 1 });
    expect(codes(res)).toEqual(["ERR_CERTIFICATE"]);
  });
});
