/**
 * Simulated SEV-SNP reports: the real 1184-byte layout (version 3, CPUID of the chosen
 * product, debug off) signed by the simulated VCEK exactly as the AMD-SP signs, so only the
 * root differs from hardware evidence.
 */
import { sha384 } from "../bytes.js";
import type { Evidence } from "../evidence.js";
import { encodeCertTable, GUID_ARK, GUID_ASK, GUID_VCEK } from "../snp/certtable.js";
import { encodePolicy, encodeReport, placeSignature, SIGNED_LENGTH } from "../snp/report.js";
import { encodeTcb } from "../snp/tcb.js";
import type { SimAmdChain, SimProduct } from "./amd.js";

/** CPUID family/model/stepping of a representative part per product. */
const CPUID: Record<SimProduct, { family: number; model: number; stepping: number }> = {
  Milan: { family: 0x19, model: 0x01, stepping: 1 },
  Genoa: { family: 0x19, model: 0x11, stepping: 1 },
  Turin: { family: 0x1a, model: 0x02, stepping: 1 },
};

export interface SimReportInput {
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData?: Uint8Array;
  guestSvn?: number;
  /** Only for tests of the debug refusal; a simulated enclave never sets it. */
  debug?: boolean;
}

export async function signSimReport(chain: SimAmdChain, input: SimReportInput): Promise<Uint8Array> {
  const tcb = encodeTcb(chain.tcb, chain.product);
  const policy = encodePolicy({
    abiMinor: 0,
    abiMajor: 0,
    smt: true,
    migrateMa: false,
    debug: input.debug ?? false,
    singleSocket: false,
    cxlAllow: false,
    memAes256Xts: false,
    raplDis: false,
    ciphertextHiding: false,
    pageSwapDisable: false,
  });
  const reportId = new Uint8Array(32);
  crypto.getRandomValues(reportId);
  const unsigned = encodeReport({
    version: 3,
    guestSvn: input.guestSvn ?? 0,
    policy,
    familyId: new Uint8Array(16),
    imageId: new Uint8Array(16),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: tcb,
    platformInfo: 0b101n,
    signerInfo: { authorKeyEn: false, maskChipKey: false, signingKey: "VCEK" },
    reportData: input.reportData,
    measurement: input.measurement,
    hostData: input.hostData ?? new Uint8Array(32),
    idKeyDigest: new Uint8Array(48),
    authorKeyDigest: new Uint8Array(48),
    reportId,
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: CPUID[chain.product],
    chipId: chain.chipId,
    committedTcb: tcb,
    currentVersion: { major: 1, minor: 55, build: 21 },
    committedVersion: { major: 1, minor: 55, build: 21 },
    launchTcb: tcb,
  });
  const signature = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-384" },
      chain.vcekKey,
      unsigned.subarray(0, SIGNED_LENGTH) as BufferSource,
    ),
  );
  return placeSignature(unsigned, signature);
}

/** Evidence as the configfs-tsm provider returns it: report plus the certificate table. */
export async function simSnpEvidence(chain: SimAmdChain, input: SimReportInput): Promise<Evidence> {
  const report = await signSimReport(chain, input);
  const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);
  const certTable = encodeCertTable([
    { guid: GUID_VCEK, data: der(chain.vcek) },
    { guid: GUID_ASK, data: der(chain.ask) },
    { guid: GUID_ARK, data: der(chain.ark) },
  ]);
  return { platform: "sev-snp", evidence: report, certificates: { certTable } };
}

/** A fixed, recognisable launch measurement for simulated images: SHA-384 of a label. */
export function simMeasurement(label = "cleanroom simulated enclave"): Promise<Uint8Array> {
  return sha384(new TextEncoder().encode(label));
}
