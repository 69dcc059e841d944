/**
 * Revocation and strict DER, on the simulated AMD chain (attestation/sim): CRLs signed here by the
 * simulated ARK (revoking ASKs, as AMD's KDS CRL does) and ASK (revoking VCEKs).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { concatBytes, sha384 } from "../../attestation/bytes.js";
import { isCleanroomError } from "../../attestation/errors.js";
import { createSimAmdChain, type SimAmdChain, signSimCrl } from "../../attestation/sim/amd.js";
import { signSimReport, simSnpEvidence } from "../../attestation/sim/snp.js";
import { encodeCertTable, GUID_ARK, GUID_ASK, GUID_VCEK } from "../../attestation/snp/certtable.js";
import { crlsFromInput, parseCrl } from "../../attestation/snp/crl.js";
import { fetchCrlForReport } from "../../attestation/snp/endorsement.js";
import { type SnpEvidence, verifySnp } from "../../attestation/snp/index.js";
import { crlUrl, type FetchLike, fetchCrl, KdsError } from "../../attestation/snp/kds.js";

const DAY = 86_400_000;
const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);
const codes = (r: { errors: { code: string }[] }) => r.errors.map((e) => e.code);
const revocation = (r: { checks: { name: string; ok: boolean; detail?: string }[] }) =>
  r.checks.find((c) => c.name === "certificates not revoked");
const pem = (label: string, b: Uint8Array) =>
  `-----BEGIN ${label}-----\n${Buffer.from(b).toString("base64")}\n-----END ${label}-----\n`;

let chain: SimAmdChain;
let other: SimAmdChain;
let evidence: SnpEvidence;
let trust: { trustedArks: Uint8Array[] };

beforeAll(async () => {
  [chain, other] = await Promise.all([
    createSimAmdChain({ product: "Milan" }),
    createSimAmdChain({ product: "Milan" }),
  ]);
  const report = await signSimReport(chain, {
    reportData: new Uint8Array(64),
    measurement: await sha384(new Uint8Array([1])),
  });
  evidence = { report, vcek: der(chain.vcek), ask: der(chain.ask), ark: der(chain.ark) };
  trust = { trustedArks: [der(chain.ark)] };
});

describe("CRL checking (verify layer)", () => {
  it("without a CRL the step passes and says nothing was checked", async () => {
    const r = await verifySnp(evidence, trust);
    expect(r.errors).toEqual([]);
    expect(revocation(r)).toEqual({ name: "certificates not revoked", ok: true, detail: "no CRL given" });
  });

  it("an ASK-issued CRL that revokes the VCEK refuses it with ERR_REVOKED", async () => {
    const crl = await signSimCrl(chain, { issuer: "ask", revoke: [chain.vcek] });
    const r = await verifySnp(evidence, { ...trust, crls: [crl] });
    expect(r.verified).toBe(false);
    expect(r.errors).toEqual([{ code: "ERR_REVOKED", message: "certificate: VCEK revoked" }]);
    expect(revocation(r)?.ok).toBe(false);
    // The report signature step is never reached.
    expect(r.checks.find((c) => c.name === "report signature")).toBeUndefined();
  });

  it("an ARK-issued CRL (AMD's kind) that revokes the ASK refuses it", async () => {
    const crl = await signSimCrl(chain, { issuer: "ark", revoke: [chain.ask] });
    const r = await verifySnp(evidence, { ...trust, crls: [crl] });
    expect(r.errors).toEqual([{ code: "ERR_REVOKED", message: "certificate: ASK revoked" }]);
  });

  it("CRLs that list other serials pass, naming what they covered; PEM works too", async () => {
    const arkCrl = await signSimCrl(chain, { issuer: "ark", nextUpdate: new Date(Date.now() + DAY) });
    const askCrl = await signSimCrl(chain, { issuer: "ask", revoke: [other.vcek] });
    const r = await verifySnp(evidence, {
      ...trust,
      crls: [pem("X509 CRL", arkCrl), new TextEncoder().encode(pem("X509 CRL", askCrl))],
    });
    expect(r.errors).toEqual([]);
    expect(revocation(r)?.detail).toBe("checked: ASK, VCEK");
    const onlyArk = await verifySnp(evidence, { ...trust, crls: [arkCrl] });
    expect(revocation(onlyArk)?.detail).toBe("checked: ASK");
  });

  it("a CRL naming this chain's issuer but signed by another key is ERR_CRL", async () => {
    // `other` has the same subject names (ARK-Milan, SEV-Milan) but its own keys.
    const forged = await signSimCrl(other, { issuer: "ask", revoke: [] });
    expect(parseCrl(forged).issuer).toEqual(parseCrl(await signSimCrl(chain, { issuer: "ask" })).issuer);
    const r = await verifySnp(evidence, { ...trust, crls: [forged] });
    expect(r.errors).toEqual([{ code: "ERR_CRL", message: "crl: signature does not verify" }]);
  });

  it("is judged at the verification time: out of date after nextUpdate", async () => {
    const nextUpdate = new Date(Date.now() + DAY);
    const crl = await signSimCrl(chain, { issuer: "ark", nextUpdate });
    expect(
      (await verifySnp(evidence, { ...trust, crls: [crl], at: new Date(Date.now() + DAY / 2) })).errors,
    ).toEqual([]);
    const late = await verifySnp(evidence, {
      ...trust,
      crls: [crl],
      at: new Date(nextUpdate.getTime() + 1000),
    });
    expect(late.errors).toEqual([{ code: "ERR_CRL", message: "crl: out of date at the verification time" }]);
    // A revocation counts whatever its date (a CRL issued after the evidence's time still applies).
    const revoked = await signSimCrl(chain, {
      issuer: "ask",
      revoke: [chain.vcek],
      thisUpdate: new Date(Date.now() + DAY / 4),
    });
    expect(
      codes(await verifySnp(evidence, { ...trust, crls: [revoked], at: new Date(Date.now() + DAY / 8) })),
    ).toEqual(["ERR_REVOKED"]);
  });

  it("CRLs of other chains only: ERR_CRL (never a silently unchecked chain)", async () => {
    const otherProduct = await createSimAmdChain({ product: "Genoa" });
    const crl = await signSimCrl(otherProduct, { issuer: "ark" });
    const r = await verifySnp(evidence, { ...trust, crls: [crl] });
    expect(r.errors).toEqual([
      { code: "ERR_CRL", message: "crl: none was issued by this chain's ARK or ASK" },
    ]);
    // Mixed with one of this chain, the foreign CRL is skipped.
    const mine = await signSimCrl(chain, { issuer: "ark" });
    expect((await verifySnp(evidence, { ...trust, crls: [crl, mine] })).errors).toEqual([]);
  });

  it("malformed CRLs: junk, trailing bytes, empty PEM", async () => {
    const crl = await signSimCrl(chain, { issuer: "ark" });
    for (const bad of [
      new Uint8Array([0x30, 0x03, 1, 2, 3]),
      concatBytes(crl, new Uint8Array([0])),
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ]) {
      const r = await verifySnp(evidence, { ...trust, crls: [bad] });
      expect(codes(r), String(bad)).toEqual(["ERR_CRL"]);
    }
    expect(() => crlsFromInput("no pem here")).toThrow(/no PEM X509 CRL/);
  });
});

describe("CRL from KDS (injectable fetch)", () => {
  const serve =
    (routes: Record<string, Uint8Array>, seen: string[]): FetchLike =>
    async (url) => {
      seen.push(url);
      const body = routes[url];
      return { ok: body !== undefined, arrayBuffer: async () => (body ?? new Uint8Array()).slice().buffer };
    };

  it("fetches the product's CRL for the report's key kind and checks with it", async () => {
    const crl = await signSimCrl(chain, { issuer: "ark", revoke: [chain.ask] });
    const seen: string[] = [];
    const fetched = await fetchCrlForReport(evidence.report, {
      fetch: serve({ [crlUrl("Milan")]: crl }, seen),
    });
    expect(seen).toEqual(["https://kdsintf.amd.com/vcek/v1/Milan/crl"]);
    expect(codes(await verifySnp(evidence, { ...trust, crls: [fetched] }))).toEqual(["ERR_REVOKED"]);
  });

  it("refuses an answer that is not a DER CRL, and fetching without a fetch function", async () => {
    const seen: string[] = [];
    await expect(
      fetchCrl("Milan", "VLEK", serve({ [crlUrl("Milan", "VLEK")]: new Uint8Array([1, 2]) }, seen)),
    ).rejects.toBeInstanceOf(KdsError);
    expect(seen).toEqual(["https://kdsintf.amd.com/vlek/v1/Milan/crl"]);
    await expect(fetchCrlForReport(evidence.report, {})).rejects.toMatchObject({ code: "ERR_USAGE" });
  });
});

describe("strict DER certificates", () => {
  it("a VCEK with bytes after its DER is refused (as vcek, and in the certificate table)", async () => {
    for (const tail of [new Uint8Array([0]), new Uint8Array(16), new TextEncoder().encode("junk")]) {
      const padded = concatBytes(der(chain.vcek), tail);
      const direct = await verifySnp({ ...evidence, vcek: padded }, trust);
      expect(direct.errors).toEqual([
        { code: "ERR_CERTIFICATE", message: "certificate: not exactly one DER certificate" },
      ]);
      const certTable = encodeCertTable([
        { guid: GUID_VCEK, data: padded },
        { guid: GUID_ASK, data: der(chain.ask) },
        { guid: GUID_ARK, data: der(chain.ark) },
      ]);
      const table = await verifySnp({ report: evidence.report, certTable }, trust);
      expect(codes(table)).toEqual(["ERR_CERTIFICATE"]);
    }
  });

  it("the same for the ASK and ARK, and a truncated certificate", async () => {
    const pad = (b: Uint8Array) => concatBytes(b, new Uint8Array([0]));
    expect(codes(await verifySnp({ ...evidence, ask: pad(evidence.ask!) }, trust))).toEqual([
      "ERR_CERTIFICATE",
    ]);
    expect(codes(await verifySnp({ ...evidence, ark: pad(evidence.ark!) }, trust))).toEqual([
      "ERR_CERTIFICATE",
    ]);
    const cut = der(chain.vcek).subarray(0, der(chain.vcek).length - 1);
    expect(codes(await verifySnp({ ...evidence, vcek: cut }, trust))).toEqual(["ERR_CERTIFICATE"]);
  });

  it("the simulated evidence as the enclave returns it still verifies", async () => {
    const ev = await simSnpEvidence(chain, {
      reportData: new Uint8Array(64),
      measurement: new Uint8Array(48),
    });
    const r = await verifySnp({ report: ev.evidence, certTable: ev.certificates!.certTable! }, trust);
    expect(r.errors).toEqual([]);
    expect(isCleanroomError(new KdsError())).toBe(true);
  });
});
