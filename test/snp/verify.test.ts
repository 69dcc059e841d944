import nodeCrypto from "node:crypto";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { bytesEqual, sha256 } from "../../attestation/bytes.js";
import { PolicyConfigError, PolicyError, TcbError } from "../../attestation/errors.js";
import { parseCertificate, toDer } from "../../attestation/snp/certs.js";
import {
  encodeCertTable,
  GUID_ARK,
  GUID_ASK,
  GUID_VCEK,
  GUID_VLEK,
} from "../../attestation/snp/certtable.js";
import { unwrapAzureHclReport } from "../../attestation/snp/hcl.js";
import {
  checkSnpPolicy,
  clearChainCache,
  DEFAULT_MINIMUM_TCB,
  parseMinimumTcbSpecs,
  parseReport,
  verifyReportChain,
  verifySnp,
} from "../../attestation/snp/index.js";
import {
  encodePolicy,
  encodeReport,
  placeSignature,
  type SnpReportFields,
} from "../../attestation/snp/report.js";
import { encodeTcb, type TcbVersion } from "../../attestation/snp/tcb.js";
import { needsTool } from "../tools.js";
import { makeSimChain, type SimChain } from "./simchain.js";
import { loadVector, readVectorFile, type SnpVector, TCB_BY_DEFAULT, VECTOR_NAMES } from "./vectors.js";

/** Explicitly accepting an older TCB, for tests about the chain and signature rather than the TCB. */
const ANY_TCB = { minimumTcb: "none" } as const;

/**
 * Per-vector configuration for tests of the chain and signature: the debug vector, the VMPL-1
 * AWS guest, and (explicitly) the older TCB of the reports the default minimum refuses.
 */
const POLICY: Record<string, { allowDebug?: boolean; maxVmpl?: number; minimumTcb?: "none" }> =
  Object.fromEntries(
    VECTOR_NAMES.map((name) => [
      name,
      {
        ...(name === "milan-gosevguest-v2-debug" ? { allowDebug: true } : {}),
        ...(name === "milan-aws-vlek-v3" ? { maxVmpl: 1 } : {}),
        ...(TCB_BY_DEFAULT[name] ? ANY_TCB : {}),
      },
    ]),
  );

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

  it("covers every vector in the TCB table", () => {
    expect(Object.keys(TCB_BY_DEFAULT).sort()).toEqual([...VECTOR_NAMES].sort());
  });

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

describe("minimum TCB on real reports (shipped defaults)", () => {
  for (const name of VECTOR_NAMES) {
    const low = TCB_BY_DEFAULT[name];
    it(`${name}: ${low ? `refused by default (below: ${low})` : "accepted by default"}`, async () => {
      const v = loadVector(name);
      const { minimumTcb: _, ...rest } = POLICY[name]!;
      const res = await verifySnp(evidence(v), { at: v.at, ...rest });
      const tcbCheck = res.checks.find((c) => c.name === "minimum TCB");
      // Every verify-layer step passed: only the policy decides.
      expect(res.checks.find((c) => c.name === "report signature")?.ok).toBe(true);
      if (low === null) {
        expect(res.errors).toEqual([]);
        expect(tcbCheck).toEqual({ name: "minimum TCB", ok: true, detail: "default (AMD-SB-3019)" });
      } else {
        expect(res.verified).toBe(false);
        expect(res.errors).toEqual([
          { code: "ERR_TCB", message: `policy: reported TCB below the minimum: ${low}` },
        ]);
        expect(tcbCheck).toEqual({ name: "minimum TCB", ok: false, detail: `below: ${low}` });
      }
    });
  }

  it("the refusal is a TcbError (a PolicyError) from checkSnpPolicy", async () => {
    const v = loadVector("genoa-oak-v2-2024");
    const r = parseReport(v.report);
    await expect(checkSnpPolicy(r, "Genoa")).rejects.toBeInstanceOf(TcbError);
    await expect(checkSnpPolicy(r, "Genoa")).rejects.toBeInstanceOf(PolicyError);
    await expect(checkSnpPolicy(r, "Genoa", { minimumTcb: "none" })).resolves.toBeUndefined();
    // The same chip at its later TCB (genoa-oak-v5) passes the same default.
    await expect(
      checkSnpPolicy(parseReport(loadVector("genoa-oak-v5").report), "Genoa"),
    ).resolves.toBeUndefined();
  });

  it("defaults per product, overridable per product and per component", async () => {
    expect(DEFAULT_MINIMUM_TCB.Milan).toEqual({ bl: 0, tee: 0, snp: 24, ucode: 219 });
    expect(DEFAULT_MINIMUM_TCB.Genoa).toEqual({ bl: 0, tee: 0, snp: 23, ucode: 84 });
    expect(DEFAULT_MINIMUM_TCB.Turin).toEqual({ fmc: 0, bl: 0, tee: 0, snp: 0, ucode: 71 });
    const oak = loadVector("milan-oak-v3"); // bl 4, tee 0, snp 24, ucode 219
    const ok = async (o: object) => (await verifySnp(evidence(oak), { at: oak.at, ...o })).errors;
    expect(await ok({ minimumTcbByProduct: { Milan: { ucode: 220 } } })).toEqual([
      { code: "ERR_TCB", message: "policy: reported TCB below the minimum: microcode" },
    ]);
    expect(await ok({ minimumTcbByProduct: { Genoa: { ucode: 250 } } })).toEqual([]);
    expect(
      await ok({ minimumTcbByProduct: { Milan: parseMinimumTcbSpecs(["bootloader=5,tee=1"]).Milan } }),
    ).toEqual([{ code: "ERR_TCB", message: "policy: reported TCB below the minimum: bootloader, tee" }]);
    // minimumTcb (every product) wins over the per-product map.
    expect(await ok({ minimumTcb: { snp: 1 }, minimumTcbByProduct: { Milan: { ucode: 255 } } })).toEqual([]);
    const turin = loadVector("turin-oak-v5"); // fmc 0, bl 1, tee 0, snp 2, ucode 71
    const res = await verifySnp(evidence(turin), { at: turin.at, minimumTcb: { fmc: 1, snp: 3 } });
    expect(res.errors).toEqual([
      { code: "ERR_TCB", message: "policy: reported TCB below the minimum: fmc, snp" },
    ]);
  });

  it("malformed minimums are a configuration error, thrown before verification", async () => {
    const v = loadVector("milan-oak-v3");
    for (const bad of [
      { minimumTcb: { ucode: 256 } },
      { minimumTcb: { ucode: -1 } },
      { minimumTcb: { x: 1 } },
    ]) {
      await expect(verifySnp(evidence(v), { at: v.at, ...(bad as object) })).rejects.toThrow(
        PolicyConfigError,
      );
    }
    await expect(
      verifySnp(evidence(v), { at: v.at, minimumTcbByProduct: { Rome: {} } as never }),
    ).rejects.toMatchObject({ code: "ERR_POLICY_CONFIG" });
  });
});

describe("policy on real reports", () => {
  it("milan-gosevguest-v2-debug: refused by default (debug, and its old TCB), accepted with allowDebug", async () => {
    const v = loadVector("milan-gosevguest-v2-debug");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(res.verified).toBe(false);
    expect(codes(res)).toEqual(["ERR_POLICY", "ERR_TCB"]);
    expect(failedCheck(res)).toBe("debug disabled");
    expect(res.checks.find((c) => c.name === "report signature")?.ok).toBe(true);
    expect((await verifySnp(evidence(v), { at: v.at, ...ANY_TCB })).verified).toBe(false);
    expect((await verifySnp(evidence(v), { at: v.at, allowDebug: true, ...ANY_TCB })).verified).toBe(true);
  });

  it("milan-aws-vlek-v3 (VMPL 1) is refused by the default maxVmpl 0", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const res = await verifySnp(evidence(v), { at: v.at, ...ANY_TCB });
    expect(codes(res)).toEqual(["ERR_POLICY"]);
    expect(failedCheck(res)).toBe("vmpl");
  });

  it("measurement, report data, host data, minimum TCB and guest SVN", async () => {
    const v = loadVector("milan-virtee-v2");
    const r = parseReport(v.report);
    const ok = async (o: object) => (await verifySnp(evidence(v), { at: v.at, ...ANY_TCB, ...o })).verified;
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
    expect(
      (await verifySnp(evidence(v), { at: v.at, ...ANY_TCB, reportDataBinding: binding })).verified,
    ).toBe(true);
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
    expect((await verifySnp({ report: v.report, certTable }, { at: v.at, ...ANY_TCB })).verified).toBe(true);
  });
  it("takes a VLEK from the table", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const certTable = encodeCertTable([{ guid: GUID_VLEK, data: v.leaf }]);
    expect(
      (await verifySnp({ report: v.report, certTable }, { at: v.at, maxVmpl: 1, ...ANY_TCB })).verified,
    ).toBe(true);
  });
  function virtee() {
    return loadVector("milan-virtee-v2");
  }
});

describe("roots that are not pinned", () => {
  const tcb: TcbVersion = { bl: 4, tee: 0, snp: 24, ucode: 219 };
  const hwId = new Uint8Array(64).map((_, i) => i + 1);
  let sim: SimChain;
  let evil: SimChain;
  let key: CryptoKey;
  const openssl = needsTool("openssl");

  beforeAll(async () => {
    if (!openssl) return;
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
      await simEvidence({ reportedTcb: encodeTcb({ ...tcb, ucode: 220 }, "Milan") }),
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
    // Either backend (node:crypto here, WebCrypto in a browser) is watched.
    const importKey = vi.spyOn(crypto.subtle, "importKey");
    const verify = vi.spyOn(crypto.subtle, "verify");
    const createPublicKey = vi.spyOn(nodeCrypto, "createPublicKey");
    const nodeVerify = vi.spyOn(nodeCrypto, "verify");
    const res = await verifySnp(evidence(v), { at: v.at });
    expect(res.verified).toBe(true);
    expect(importKey).not.toHaveBeenCalled();
    expect(createPublicKey).not.toHaveBeenCalled();
    expect(verify.mock.calls.length + nodeVerify.mock.calls.length).toBe(1);
    if (verify.mock.calls.length === 1) expect(verify.mock.calls[0]![0]).toMatchObject({ name: "ECDSA" });
    else expect(nodeVerify.mock.calls[0]![2]).toMatchObject({ dsaEncoding: "ieee-p1363" });
    vi.restoreAllMocks();
  });
  it("a warm chain still checks validity against the new time", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    await verifySnp(evidence(v), { at: v.at, maxVmpl: 1 });
    const res = await verifySnp(evidence(v), { at: new Date("2030-01-01T00:00:00Z"), maxVmpl: 1 });
    expect(codes(res)).toEqual(["ERR_CERTIFICATE"]);
  });
});
