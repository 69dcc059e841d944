import { describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { parseAmdExtensions, parseCertificate, toDer } from "../../attestation/snp/certs.js";
import {
  certChainUrl,
  crlUrl,
  type FetchLike,
  fetchCertChain,
  fetchVcek,
  KdsError,
  parseCertChainResponse,
  parseVcekResponse,
  vcekUrl,
} from "../../attestation/snp/kds.js";
import { parseReport } from "../../attestation/snp/report.js";
import { decodeTcb } from "../../attestation/snp/tcb.js";
import { loadVector, readVectorFile } from "./vectors.js";

const fakeFetch = (routes: Record<string, Uint8Array | string>, seen: string[] = []): FetchLike => {
  return async (url) => {
    seen.push(url);
    const body = routes[url];
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    return {
      ok: body !== undefined,
      arrayBuffer: async () => (bytes ?? new Uint8Array()).slice().buffer as ArrayBuffer,
    };
  };
};

describe("AMD KDS", () => {
  it("Turin VCEK URL: 16-hex-character id and fmcSPL, as Oak fetched it", () => {
    const r = parseReport(loadVector("turin-oak-v5").report);
    const url = vcekUrl("Turin", r.chipId, decodeTcb(r.reportedTcb, "Turin"));
    expect(url).toBe(
      "https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71",
    );
    const prov = readVectorFile("turin-oak-v5", "provenance.md");
    expect(new TextDecoder().decode(prov)).toContain(url);
  });

  it("Milan VCEK URL: 128-hex-character id, no fmcSPL", () => {
    const v = loadVector("milan-virtee-v2");
    const r = parseReport(v.report);
    const url = vcekUrl("Milan", r.chipId, decodeTcb(r.reportedTcb, "Milan"));
    expect(url).toMatch(
      /^https:\/\/kdsintf\.amd\.com\/vcek\/v1\/Milan\/[0-9a-f]{128}\?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115$/,
    );
    expect(url).toContain(Buffer.from(r.chipId).toString("hex"));
  });

  it("refuses a Turin URL without FMC SPL and a wrong chip id length", () => {
    expect(() => vcekUrl("Turin", new Uint8Array(8), { bl: 1, tee: 0, snp: 2, ucode: 71 })).toThrow(
      UsageError,
    );
    expect(() => vcekUrl("Milan", new Uint8Array(8), { bl: 1, tee: 0, snp: 2, ucode: 71 })).toThrow(
      UsageError,
    );
  });

  it("cert_chain and CRL URLs", () => {
    expect(certChainUrl("Genoa")).toBe("https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain");
    expect(certChainUrl("Milan", "VLEK")).toBe("https://kdsintf.amd.com/vlek/v1/Milan/cert_chain");
    expect(crlUrl("Turin")).toBe("https://kdsintf.amd.com/vcek/v1/Turin/crl");
    expect(crlUrl("Milan", "VLEK")).toBe("https://kdsintf.amd.com/vlek/v1/Milan/crl");
  });

  it("parses a cert_chain answer, ASK first", () => {
    const v = loadVector("genoa-oak-v5");
    const body = new TextDecoder().decode(v.ask) + new TextDecoder().decode(v.ark);
    const { ask, ark } = parseCertChainResponse(body);
    expect(ask).toEqual(toDer(v.ask));
    expect(ark).toEqual(toDer(v.ark));
    expect(() => parseCertChainResponse(new TextDecoder().decode(v.ask))).toThrow(KdsError);
    expect(() => parseCertChainResponse(toDer(v.ask))).toThrow(KdsError);
  });

  it("parses a DER VCEK answer and refuses HTML", () => {
    const v = loadVector("turin-oak-v5");
    expect(parseVcekResponse(v.leaf)).toEqual(v.leaf);
    expect(() => parseVcekResponse(new TextEncoder().encode("<html>"))).toThrow(KdsError);
  });

  it("fetching is off by default and uses only the injected fetch", async () => {
    const v = loadVector("turin-oak-v5");
    const r = parseReport(v.report);
    const tcb = decodeTcb(r.reportedTcb, "Turin");
    await expect(fetchVcek("Turin", r.chipId, tcb)).rejects.toThrow(UsageError);
    const seen: string[] = [];
    const f = fakeFetch(
      {
        [vcekUrl("Turin", r.chipId, tcb)]: v.leaf,
        [certChainUrl("Turin")]: new TextDecoder().decode(v.ask) + new TextDecoder().decode(v.ark),
      },
      seen,
    );
    const vcek = await fetchVcek("Turin", r.chipId, tcb, f);
    expect(parseAmdExtensions(parseCertificate(vcek)).tcb).toEqual(tcb);
    expect((await fetchCertChain("Turin", "VCEK", f)).ark).toEqual(toDer(v.ark));
    expect(seen).toHaveLength(2);
    await expect(fetchCertChain("Genoa", "VCEK", f)).rejects.toThrow(KdsError);
  });
});

describe("AMD certificate extensions", () => {
  it("Turin VCEK: fmcSPL and 8-byte hwID", () => {
    const ext = parseAmdExtensions(parseCertificate(loadVector("turin-oak-v5").leaf));
    expect(ext).toMatchObject({ kind: "VCEK", productName: "Turin", structVersion: 1 });
    expect(ext.tcb).toEqual({ fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 });
    expect(Buffer.from(ext.hwId!).toString("hex")).toBe("3b42092f69c656d3");
  });
  it("Milan VLEK: CSP_ID, no hwID", () => {
    const ext = parseAmdExtensions(parseCertificate(loadVector("milan-aws-vlek-v3").leaf));
    expect(ext).toMatchObject({ kind: "VLEK", productName: "Milan", cspId: "CN=cc-us-east-2.amazonaws.com" });
    expect(ext.hwId).toBeUndefined();
    expect(ext.tcb).toEqual({ bl: 4, tee: 0, snp: 24, ucode: 217 });
  });
  it("Milan VCEK: 64-byte hwID equals CHIP_ID", () => {
    const v = loadVector("milan-oak-v3");
    const ext = parseAmdExtensions(parseCertificate(v.leaf));
    expect(ext.hwId).toEqual(parseReport(v.report).chipId);
    expect(ext.productName).toBe("Milan-B0");
  });
});
