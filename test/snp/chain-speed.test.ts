/**
 * What makes cold SEV-SNP verification fast must not widen what it accepts: pinned-root signatures
 * checked once per process (remembered only for the exact pinned bytes), the strict DER
 * certificate parser, the node:crypto signature backend and the remembered PSS parameters.
 */
import nodeCrypto from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, Name } from "@peculiar/asn1-x509";
import { beforeAll, describe, expect, it } from "vitest";
import { bytesEqual } from "../../attestation/bytes.js";
import { DerReader } from "../../attestation/der.js";
import { CertificateError } from "../../attestation/errors.js";
import {
  type ChainCertificate,
  normalizeSerial,
  OID_BL_SPL,
  OID_CSP_ID,
  parseAmdExtensions,
  parseCertificate,
  toDer,
} from "../../attestation/snp/certs.js";
import {
  clearChainCache,
  encodeReport,
  parseReport,
  placeSignature,
  verifySnp,
} from "../../attestation/snp/index.js";
import type { SnpReportFields } from "../../attestation/snp/report.js";
import { PINNED_ROOTS } from "../../attestation/snp/roots.js";
import {
  checkPssAlgorithm,
  nodeCryptoBackend,
  type SignatureBackend,
  signatureBackend,
  webCryptoBackend,
} from "../../attestation/snp/signature.js";
import { encodeTcb, type TcbVersion } from "../../attestation/snp/tcb.js";
import { findBytes } from "../bytes.js";
import { needsTool } from "../tools.js";
import { makeSimChain, type SimChain } from "./simchain.js";
import { loadVector, readVectorFile, VECTOR_NAMES } from "./vectors.js";

const codes = (r: { errors: { code: string }[] }): string[] => r.errors.map((e) => e.code);
const milan = () => loadVector("milan-oak-v3");
const milanEvidence = () => {
  const v = milan();
  return { report: v.report, vcek: v.leaf, ask: v.ask, ark: v.ark };
};
const pinnedMilan = PINNED_ROOTS.find((r) => r.product === "Milan")!;
const pinnedAsk = toDer(pinnedMilan.intermediates.find((i) => i.kind === "ASK")!.pem);
const pinnedArk = toDer(pinnedMilan.ark);

/** A real, verified Milan chain: warms the chain cache and the pinned-signature memo. */
async function warmGenuine(): Promise<void> {
  const res = await verifySnp(milanEvidence(), { at: milan().at });
  expect(res.errors).toEqual([]);
  expect(res.verified).toBe(true);
  expect(res.simulated).toBe(false);
  expect(res.claims["product"]).toBe("Milan");
}

describe("pinned signatures are remembered only for the exact pinned bytes", () => {
  it("a tampered copy of the pinned ASK (same subject and issuer) is refused after the memo is warm", async () => {
    clearChainCache();
    await warmGenuine();
    const spki = parseCertificate(pinnedAsk).spki;
    const spkiAt = findBytes(pinnedAsk, spki);
    const copies = [
      flip(pinnedAsk, pinnedAsk.length - 1), // the signature
      flip(pinnedAsk, spkiAt + spki.length - 40), // the RSA modulus, inside the signed bytes
    ];
    for (const tampered of copies) {
      const parsed = parseCertificate(tampered);
      const original = parseCertificate(pinnedAsk);
      expect(bytesEqual(parsed.subject, original.subject)).toBe(true);
      expect(bytesEqual(parsed.issuer, original.issuer)).toBe(true);
      for (const ark of [milan().ark, undefined]) {
        const res = await verifySnp({ ...milanEvidence(), ask: tampered, ark }, { at: milan().at });
        expect(res.verified).toBe(false);
        expect(codes(res)).toEqual(["ERR_SIGNATURE"]);
      }
    }
    // The genuine chain, cold again, still verifies from the memo.
    clearChainCache();
    await warmGenuine();
  });

  it("the exact pinned ASK supplied as DER, as PEM or not at all verifies the same", async () => {
    clearChainCache();
    const v = milan();
    for (const ask of [pinnedAsk, v.ask, undefined]) {
      for (const ark of [pinnedArk, v.ark, undefined]) {
        const res = await verifySnp({ report: v.report, vcek: v.leaf, ask, ark }, { at: v.at });
        expect(res.verified).toBe(true);
        expect(res.simulated).toBe(false);
      }
    }
  });

  describe("a simulated chain whose ARK and ASK carry AMD's Milan names", () => {
    const tcb: TcbVersion = { bl: 4, tee: 0, snp: 24, ucode: 219 };
    const hwId = new Uint8Array(64).map((_, i) => 64 - i);
    const amd = "/OU=Engineering/C=US/L=Santa Clara/ST=CA/O=Advanced Micro Devices";
    let mimic: SimChain;
    let report: Uint8Array;
    const openssl = needsTool("openssl");

    beforeAll(async () => {
      if (!openssl) return;
      mimic = makeSimChain("unused", hwId, tcb, { ark: `${amd}/CN=ARK-Milan`, ask: `${amd}/CN=SEV-Milan` });
      const key = await crypto.subtle.importKey(
        "pkcs8",
        mimic.vcekKey as BufferSource,
        { name: "ECDSA", namedCurve: "P-384" },
        false,
        ["sign"],
      );
      const base = parseReport(milan().report);
      const fields: SnpReportFields = { ...base, chipId: hwId, reportedTcb: encodeTcb(tcb, "Milan") };
      const unsigned = encodeReport(fields);
      const sig = await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-384" },
        key,
        unsigned.subarray(0, 0x2a0) as BufferSource,
      );
      report = placeSignature(unsigned, new Uint8Array(sig));
    });

    it("has exactly the pinned names (so the checks below are about keys, not names)", () => {
      const [ark, ask] = [parseCertificate(mimic.ark), parseCertificate(mimic.ask)];
      const [realArk, realAsk] = [parseCertificate(pinnedArk), parseCertificate(pinnedAsk)];
      expect(bytesEqual(ark.subject, realArk.subject)).toBe(true);
      expect(bytesEqual(ask.subject, realAsk.subject)).toBe(true);
      expect(bytesEqual(ask.issuer, realAsk.issuer)).toBe(true);
      expect(bytesEqual(ark.der, realArk.der)).toBe(false);
    });

    it("is never taken for AMD's chain, before or after the genuine chain warmed the memo", async () => {
      for (const warm of [false, true]) {
        clearChainCache();
        if (warm) await warmGenuine();
        const ev = { report, vcek: mimic.vcek, ask: mimic.ask };
        // Without its root: the pinned ARK-Milan, whose name it carries, did not sign its ASK.
        expect(codes(await verifySnp(ev))).toEqual(["ERR_SIGNATURE"]);
        // With its root, untrusted: not a pinned root (and not marked simulated).
        expect(codes(await verifySnp({ ...ev, ark: mimic.ark }))).toEqual(["ERR_UNTRUSTED_ROOT"]);
        // Trusted explicitly, with or without the root in the evidence: simulated, no product.
        for (const ark of [mimic.ark, undefined]) {
          const res = await verifySnp({ ...ev, ark }, { trustedArks: [mimic.ark] });
          expect(res.errors).toEqual([]);
          expect(res.simulated).toBe(true);
        }
        // The genuine chain is unaffected, and trusting the mimic does not make it simulated.
        await warmGenuine();
        const genuine = await verifySnp(milanEvidence(), { at: milan().at, trustedArks: [mimic.ark] });
        expect(genuine.verified).toBe(true);
        expect(genuine.simulated).toBe(false);
      }
    });

    it("its ASK with the pinned ARK supplied is refused", async () => {
      clearChainCache();
      await warmGenuine();
      const res = await verifySnp({ report, vcek: mimic.vcek, ask: mimic.ask, ark: milan().ark });
      expect(codes(res)).toEqual(["ERR_SIGNATURE"]);
    });
  });
});

/** The fields as the schema parser (@peculiar/asn1-x509) sees them: an independent reading. */
function schemaFields(der: Uint8Array) {
  const c = AsnConvert.parse(der, Certificate);
  const t = c.tbsCertificate;
  const u8 = (b: ArrayBuffer | ArrayBufferView): Uint8Array =>
    b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return {
    serialNumber: normalizeSerial(u8(t.serialNumber)),
    tbs: u8(c.tbsCertificateRaw!),
    signatureAlgorithmOid: c.signatureAlgorithm.algorithm,
    signatureAlgorithmParams: c.signatureAlgorithm.parameters
      ? u8(c.signatureAlgorithm.parameters)
      : undefined,
    signature: u8(c.signatureValue),
    spki: u8(AsnConvert.serialize(t.subjectPublicKeyInfo)),
    publicKeyAlgorithmOid: t.subjectPublicKeyInfo.algorithm.algorithm,
    subject: u8(AsnConvert.serialize(t.subject)),
    issuer: u8(AsnConvert.serialize(t.issuer)),
    notBefore: t.validity.notBefore.getTime(),
    notAfter: t.validity.notAfter.getTime(),
    extensions: new Map((t.extensions ?? []).map((e) => [e.extnID, new Uint8Array(e.extnValue.buffer)])),
  };
}

/**
 * Our fields equal the schema parser's. Names are compared after the schema parser's own
 * re-encoding of ours: it re-encodes a string that is not valid UTF-8 differently, while ours are
 * the signed bytes as they are.
 */
function sameFields(ours: ChainCertificate, theirs: ReturnType<typeof schemaFields>, label: string): void {
  const { der: _der, publicKeyParamsOid: _params, ...rest } = ours;
  const reencoded = (name: Uint8Array): Uint8Array =>
    new Uint8Array(AsnConvert.serialize(AsnConvert.parse(name, Name)));
  expect(
    {
      ...rest,
      subject: reencoded(rest.subject),
      issuer: reencoded(rest.issuer),
      extensions: [...rest.extensions],
    },
    label,
  ).toEqual({ ...theirs, extensions: [...theirs.extensions] });
}

function allCertificates(): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  for (const name of VECTOR_NAMES) {
    const v = loadVector(name);
    out.push(
      { label: `${name} leaf`, der: toDer(v.leaf) },
      { label: `${name} ask`, der: toDer(v.ask) },
      { label: `${name} ark`, der: toDer(v.ark) },
    );
  }
  for (const r of PINNED_ROOTS) {
    out.push({ label: `${r.product} ARK`, der: toDer(r.ark) });
    for (const i of r.intermediates) out.push({ label: `${r.product} ${i.kind}`, der: toDer(i.pem) });
  }
  return out;
}

describe("strict DER certificate parser", () => {
  it("reads every real and pinned certificate exactly as the schema parser does", () => {
    const certs = allCertificates();
    expect(certs.length).toBeGreaterThanOrEqual(30);
    for (const { label, der } of certs) sameFields(parseCertificate(der), schemaFields(der), label);
  });

  it("keeps its own copy: changing the caller's bytes afterwards changes nothing", () => {
    const der = toDer(milan().leaf);
    const parsed = parseCertificate(der);
    const before = parsed.tbs.slice();
    der.fill(0);
    expect(parsed.tbs).toEqual(before);
    expect(bytesEqual(parsed.der, toDer(milan().leaf))).toBe(true);
  });

  it("a VCEK with any one byte changed is refused with ERR_CERTIFICATE or read as the schema parser reads it", () => {
    const der = toDer(milan().leaf);
    let refused = 0;
    for (let i = 0; i < der.length; i++) {
      // Each byte gets one bit flipped, the bit position cycling through all eight.
      const changed = flip(der, i, 1 << (i % 8));
      let ours: ChainCertificate;
      try {
        ours = parseCertificate(changed);
      } catch (e) {
        expect(e, `byte ${i}`).toBeInstanceOf(CertificateError);
        refused++;
        continue;
      }
      sameFields(ours, schemaFields(changed), `byte ${i}`);
    }
    // Most header bytes are structural; most content bytes are not.
    expect(refused).toBeGreaterThan(25);
    expect(refused).toBeLessThan(der.length - 250);
  });

  it("refuses differing inner and outer signature algorithms, trailing bytes and a truncation", () => {
    const der = toDer(milan().ask);
    const c = parseCertificate(der);
    const params = c.signatureAlgorithmParams!;
    // The inner AlgorithmIdentifier comes first (inside the TBS); change its salt length only.
    const inner = findBytes(der, params);
    expect(findBytes(der, params, inner + 1)).toBeGreaterThan(inner);
    const salt = findBytes(der, new Uint8Array([0xa2, 0x03, 0x02, 0x01, 0x30]), inner) + 4;
    expect(salt).toBeLessThan(inner + params.length);
    expect(() => parseCertificate(flip(der, salt, 0x10))).toThrow(
      "certificate: inner and outer signature algorithms differ",
    );
    const padded = new Uint8Array(der.length + 1);
    padded.set(der);
    expect(() => parseCertificate(padded)).toThrow("certificate: not exactly one DER certificate");
    expect(() => parseCertificate(der.subarray(0, der.length - 1))).toThrow(CertificateError);
  });
});

describe("DER pieces read without the schema parser", () => {
  const reader = (bytes: number[]) =>
    new DerReader(new Uint8Array(bytes), (m) => {
      throw new CertificateError(m);
    });
  const oid = (bytes: number[]) => {
    const r = reader(bytes);
    return r.oid(r.whole(0x06));
  };

  it("object identifiers: minimal base-128 arcs only", () => {
    expect(oid([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a])).toBe(
      "1.2.840.113549.1.1.10",
    );
    expect(oid([0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22])).toBe("1.3.132.0.34");
    expect(oid([0x06, 0x03, 0x88, 0x37, 0x03])).toBe("2.999.3");
    for (const bad of [
      [0x06, 0x00], // empty
      [0x06, 0x02, 0x2a, 0x86], // last arc unterminated
      [0x06, 0x03, 0x2a, 0x80, 0x01], // leading 0x80: not minimal
      [0x06, 0x0a, 0x2a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // arc too large
    ])
      expect(() => oid(bad), JSON.stringify(bad)).toThrow(CertificateError);
    expect(() => reader([0x04, 0x01, 0x2a]).oid(reader([0x04, 0x01, 0x2a]).read(0))).toThrow(
      CertificateError,
    );
  });

  it("SPL extensions: DER INTEGERs in 0..255; others refused as ERR_CERTIFICATE", () => {
    const leaf = parseCertificate(toDer(milan().leaf));
    const withBl = (value: number[]) => {
      const extensions = new Map(leaf.extensions);
      extensions.set(OID_BL_SPL, new Uint8Array(value));
      return parseAmdExtensions({ ...leaf, extensions });
    };
    expect(withBl([0x02, 0x01, 0x00]).tcb.bl).toBe(0);
    expect(withBl([0x02, 0x01, 0x7f]).tcb.bl).toBe(127);
    expect(withBl([0x02, 0x02, 0x00, 0xff]).tcb.bl).toBe(255);
    for (const [bad, message] of [
      [[0x02, 0x02, 0x01, 0x00], "certificate: SPL extension out of range"], // 256
      [[0x02, 0x01, 0x80], "certificate: SPL extension out of range"], // -128
      [[0x02, 0x02, 0x00, 0x05], "certificate: malformed SPL extension"], // non-minimal
      [[0x02, 0x02, 0xff, 0x80], "certificate: malformed SPL extension"], // non-minimal
      [[0x02, 0x00], "certificate: malformed SPL extension"],
      [[0x04, 0x01, 0x05], "certificate: malformed SPL extension"],
      [[0x02, 0x01, 0x05, 0x00], "certificate: malformed SPL extension"], // trailing byte
    ] as const)
      expect(() => withBl([...bad]), JSON.stringify(bad)).toThrow(message);
  });

  it("string extensions: a DER IA5String (ASCII)", () => {
    const vlek = parseCertificate(toDer(loadVector("milan-aws-vlek-v3").leaf));
    const withCsp = (value: number[]) => {
      const extensions = new Map(vlek.extensions);
      extensions.set(OID_CSP_ID, new Uint8Array(value));
      return parseAmdExtensions({ ...vlek, extensions });
    };
    expect(parseAmdExtensions(vlek).cspId).toMatch(/^CN=/);
    expect(withCsp([0x16, 0x02, 0x41, 0x42]).cspId).toBe("AB");
    for (const bad of [
      [0x16, 0x01, 0xc3],
      [0x0c, 0x01, 0x41],
      [0x16, 0x02, 0x41],
    ])
      expect(() => withCsp(bad), JSON.stringify(bad)).toThrow("certificate: malformed string extension");
  });
});

describe("signature backends", () => {
  const backends: [string, SignatureBackend][] = [
    ["node:crypto", nodeCryptoBackend(nodeCrypto)],
    ["WebCrypto", webCryptoBackend],
  ];

  it("node:crypto is the one used where the runtime offers it", () => {
    expect(typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule).toBe("function");
    expect(signatureBackend).not.toBe(webCryptoBackend);
  });

  it.each(backends)("%s: RSASSA-PSS and ECDSA P-384 on real certificates and reports", async (_, backend) => {
    for (const name of ["milan-oak-v3", "genoa-oak-v5", "turin-oak-v5", "milan-aws-vlek-v3"]) {
      const v = loadVector(name);
      const [leaf, ask, ark] = [v.leaf, v.ask, v.ark].map((c) => parseCertificate(toDer(c))) as [
        ChainCertificate,
        ChainCertificate,
        ChainCertificate,
      ];
      const askKey = await backend.rsaPss(ask.spki, "certificate");
      expect(await askKey.verify(leaf.signature, leaf.tbs)).toBe(true);
      expect(await askKey.verify(flip(leaf.signature, 7), leaf.tbs)).toBe(false);
      expect(await askKey.verify(leaf.signature, flip(leaf.tbs, 100))).toBe(false);
      expect(await askKey.verify(leaf.signature.subarray(1), leaf.tbs)).toBe(false);
      // A signature by the right key over the wrong certificate.
      expect(await (await backend.rsaPss(ark.spki, "certificate")).verify(leaf.signature, leaf.tbs)).toBe(
        false,
      );

      const report = parseReport(name === "milan-azure-v3" ? readVectorFile(name, "report.bin") : v.report);
      const leafKey = await backend.ecdsaP384(leaf.spki);
      expect(await leafKey.verify(report.signature, report.signedBytes)).toBe(true);
      expect(await leafKey.verify(flip(report.signature, 3), report.signedBytes)).toBe(false);
      expect(await leafKey.verify(report.signature, flip(report.signedBytes, 0x50))).toBe(false);
      expect(await leafKey.verify(report.signature.subarray(0, 95), report.signedBytes)).toBe(false);
    }
  });

  it.each(backends)("%s: a key of the wrong type is ERR_CERTIFICATE", async (_, backend) => {
    const v = milan();
    const leaf = parseCertificate(toDer(v.leaf));
    const ask = parseCertificate(toDer(v.ask));
    await expect(backend.rsaPss(leaf.spki, "certificate")).rejects.toMatchObject({ code: "ERR_CERTIFICATE" });
    await expect(backend.ecdsaP384(ask.spki)).rejects.toMatchObject({ code: "ERR_CERTIFICATE" });
    await expect(backend.rsaPss(new Uint8Array([0x30, 0]), "crl")).rejects.toMatchObject({
      code: "ERR_CERTIFICATE",
    });
    const p256 = nodeCrypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    const spki = new Uint8Array(p256.export({ format: "der", type: "spki" }));
    await expect(backend.ecdsaP384(spki)).rejects.toMatchObject({ code: "ERR_CERTIFICATE" });
  });
});

describe("remembered PSS parameters", () => {
  it("only the exact accepted encoding is remembered; other salts and algorithms stay refused", () => {
    const ask = parseCertificate(toDer(milan().ask));
    checkPssAlgorithm(ask);
    checkPssAlgorithm(ask);
    const params = ask.signatureAlgorithmParams!;
    const salt = findBytes(params, new Uint8Array([0xa2, 0x03, 0x02, 0x01, 0x30])) + 4;
    for (const value of [0x20, 0x31]) {
      const other = params.slice();
      other[salt] = value;
      expect(() => checkPssAlgorithm({ ...ask, signatureAlgorithmParams: other })).toThrow(CertificateError);
    }
    // The same parameters under another algorithm identifier (rsaEncryption) are refused.
    expect(() => checkPssAlgorithm({ ...ask, signatureAlgorithmOid: "1.2.840.113549.1.1.1" })).toThrow(
      CertificateError,
    );
    expect(() => checkPssAlgorithm({ ...ask, signatureAlgorithmParams: undefined })).toThrow(
      CertificateError,
    );
  });
});

function flip(b: Uint8Array, at: number, bit = 0x01): Uint8Array {
  const out = b.slice();
  out[at]! ^= bit;
  return out;
}
