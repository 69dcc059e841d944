/**
 * ATTESTATION_REPORT ⇄ typed structure (SEV-SNP firmware ABI, report versions 2, 3, 4 and 5).
 * Bytes only: no crypto and no opinions beyond what the format itself requires (sizes, known
 * versions, reserved fields zero).
 */
import { isAllZero } from "../bytes.js";
import { EvidenceFormatError, UsageError } from "../errors.js";
import { productFromCpuid, type SnpProduct } from "./product.js";

export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes 0x000..0x29F. */
export const SIGNED_LENGTH = 0x2a0;
const SIG_R = 0x2a0;
const SIG_S = 0x2e8;
const SIG_SLOT = 72;
/** P-384 scalars are 48 bytes; the rest of each 72-byte slot must be zero. */
const SCALAR = 48;
const CHIP_ID = 0x1a0;
const TURIN_CHIP_ID_LENGTH = 8;

export type SigningKey = "VCEK" | "VLEK" | "none";

export interface SnpSignerInfo {
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: SigningKey;
}

export interface SnpGuestPolicy {
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export interface SnpPlatformInfo {
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface SnpCpuid {
  family: number;
  model: number;
  stepping: number;
}

/** Everything the signed part of a report holds; what encodeReport takes. TCBs are raw u64s. */
export interface SnpReportFields {
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: bigint;
  platformInfo: bigint;
  signerInfo: SnpSignerInfo;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: bigint;
  /** Version 3 and later only. */
  cpuid?: SnpCpuid;
  /** 64 bytes as stored (Turin: 8 significant bytes then zeros; all zero when masked). */
  chipId: Uint8Array;
  committedTcb: bigint;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchTcb: bigint;
  /** Version 5 and later only. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
}

export interface SnpReport extends SnpReportFields {
  policyFlags: SnpGuestPolicy;
  platform: SnpPlatformInfo;
  /** From CPUID (v3+) when the family/model is known; v2 reports leave it to the chain. */
  product?: SnpProduct;
  /** r || s, 48 bytes each, big-endian: the form WebCrypto's ECDSA verify takes. */
  signature: Uint8Array;
  /** The 672 signed bytes. */
  signedBytes: Uint8Array;
}

const SIGNING_KEYS: Record<number, SigningKey> = { 0: "VCEK", 1: "VLEK", 7: "none" };
const SIGNING_KEY_BITS: Record<SigningKey, number> = { VCEK: 0, VLEK: 1, none: 7 };

const POLICY_RESERVED_ONE = 1n << 17n;
/** Bits 26..63 must be zero. */
const POLICY_MBZ = ~((1n << 26n) - 1n) & 0xffff_ffff_ffff_ffffn;

const POLICY_BITS: [keyof SnpGuestPolicy, bigint][] = [
  ["smt", 16n],
  ["migrateMa", 18n],
  ["debug", 19n],
  ["singleSocket", 20n],
  ["cxlAllow", 21n],
  ["memAes256Xts", 22n],
  ["raplDis", 23n],
  ["ciphertextHiding", 24n],
  ["pageSwapDisable", 25n],
];

const PLATFORM_BITS: [keyof SnpPlatformInfo, bigint][] = [
  ["smtEnabled", 0n],
  ["tsmeEnabled", 1n],
  ["eccEnabled", 2n],
  ["raplDisabled", 3n],
  ["ciphertextHidingEnabled", 4n],
  ["aliasCheckComplete", 5n],
  ["tioEnabled", 7n],
];

const bit = (v: bigint, b: bigint): boolean => ((v >> b) & 1n) === 1n;

export function decodePolicy(policy: bigint): SnpGuestPolicy {
  const out = {
    abiMinor: Number(policy & 0xffn),
    abiMajor: Number((policy >> 8n) & 0xffn),
  } as SnpGuestPolicy;
  for (const [name, b] of POLICY_BITS) (out as unknown as Record<string, boolean>)[name] = bit(policy, b);
  return out;
}

/** Inverse of decodePolicy; sets the reserved bit 17 the format requires. */
export function encodePolicy(p: SnpGuestPolicy): bigint {
  let v = BigInt(p.abiMinor & 0xff) | (BigInt(p.abiMajor & 0xff) << 8n) | POLICY_RESERVED_ONE;
  for (const [name, b] of POLICY_BITS) if (p[name]) v |= 1n << b;
  return v;
}

export function decodePlatformInfo(info: bigint): SnpPlatformInfo {
  const out = {} as Record<string, boolean>;
  for (const [name, b] of PLATFORM_BITS) out[name] = bit(info, b);
  return out as unknown as SnpPlatformInfo;
}

function fail(message: string): never {
  throw new EvidenceFormatError(message);
}

function requireZero(b: Uint8Array, from: number, to: number, field: string): void {
  if (!isAllZero(b.subarray(from, to))) fail(`report: reserved field ${field} not zero`);
}

/** Reverses a little-endian 72-byte slot into a 48-byte big-endian scalar. */
function scalarFromSlot(b: Uint8Array, at: number): Uint8Array {
  const out = new Uint8Array(SCALAR);
  for (let i = 0; i < SCALAR; i++) out[i] = b[at + SCALAR - 1 - i]!;
  return out;
}

export function parseReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array) || bytes.length !== REPORT_SIZE) fail("report: size is not 1184 bytes");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  const copy = (o: number, n: number): Uint8Array => bytes.slice(o, o + n);
  const fw = (o: number): FirmwareVersion => ({
    build: bytes[o]!,
    minor: bytes[o + 1]!,
    major: bytes[o + 2]!,
  });

  const version = u32(0x000);
  if (version < 2 || version > 5) fail("report: unsupported version");
  const policy = u64(0x008);
  if ((policy & POLICY_RESERVED_ONE) === 0n) fail("report: policy bit 17 not set");
  if ((policy & POLICY_MBZ) !== 0n) fail("report: policy reserved bits not zero");
  const signatureAlgo = u32(0x034);
  if (signatureAlgo !== 1) fail("report: unknown signature algorithm");
  const keyInfo = u32(0x048);
  if (keyInfo >>> 5 !== 0) fail("report: signer info reserved bits not zero");
  const signingKey = SIGNING_KEYS[(keyInfo >>> 2) & 7];
  if (signingKey === undefined) fail("report: unknown signing key");
  requireZero(bytes, 0x04c, 0x050, "0x04C");

  let cpuid: SnpCpuid | undefined;
  let product: SnpProduct | undefined;
  if (version >= 3) {
    cpuid = { family: bytes[0x188]!, model: bytes[0x189]!, stepping: bytes[0x18a]! };
    product = productFromCpuid(cpuid.family, cpuid.model);
    requireZero(bytes, 0x18b, 0x1a0, "0x18B");
  } else {
    requireZero(bytes, 0x188, 0x1a0, "0x188");
  }
  if (product === "Turin") requireZero(bytes, CHIP_ID + TURIN_CHIP_ID_LENGTH, CHIP_ID + 64, "CHIP_ID[8:]");
  requireZero(bytes, 0x1eb, 0x1ec, "0x1EB");
  requireZero(bytes, 0x1ef, 0x1f0, "0x1EF");
  requireZero(bytes, version >= 5 ? 0x208 : 0x1f8, SIGNED_LENGTH, "before signature");
  requireZero(bytes, SIG_R + SCALAR, SIG_R + SIG_SLOT, "signature R padding");
  requireZero(bytes, SIG_S + SCALAR, SIG_S + SIG_SLOT, "signature S padding");
  requireZero(bytes, SIG_S + SIG_SLOT, REPORT_SIZE, "after signature");

  const platformInfo = u64(0x040);
  const signature = new Uint8Array(2 * SCALAR);
  signature.set(scalarFromSlot(bytes, SIG_R), 0);
  signature.set(scalarFromSlot(bytes, SIG_S), SCALAR);

  const report: SnpReport = {
    version,
    guestSvn: u32(0x004),
    policy,
    policyFlags: decodePolicy(policy),
    familyId: copy(0x010, 16),
    imageId: copy(0x020, 16),
    vmpl: u32(0x030),
    signatureAlgo,
    currentTcb: u64(0x038),
    platformInfo,
    platform: decodePlatformInfo(platformInfo),
    signerInfo: { authorKeyEn: (keyInfo & 1) === 1, maskChipKey: (keyInfo & 2) === 2, signingKey },
    reportData: copy(0x050, 64),
    measurement: copy(0x090, 48),
    hostData: copy(0x0c0, 32),
    idKeyDigest: copy(0x0e0, 48),
    authorKeyDigest: copy(0x110, 48),
    reportId: copy(0x140, 32),
    reportIdMa: copy(0x160, 32),
    reportedTcb: u64(0x180),
    chipId: copy(CHIP_ID, 64),
    committedTcb: u64(0x1e0),
    currentVersion: fw(0x1e8),
    committedVersion: fw(0x1ec),
    launchTcb: u64(0x1f0),
    signature,
    signedBytes: copy(0, SIGNED_LENGTH),
  };
  if (cpuid) report.cpuid = cpuid;
  if (product) report.product = product;
  if (version >= 5) {
    report.launchMitVector = u64(0x1f8);
    report.currentMitVector = u64(0x200);
  }
  return report;
}

/** The significant CHIP_ID bytes: 8 on Turin, 64 elsewhere. */
export function chipIdFor(report: SnpReportFields, product: SnpProduct): Uint8Array {
  return product === "Turin" ? report.chipId.subarray(0, TURIN_CHIP_ID_LENGTH) : report.chipId;
}

function usage(message: string): never {
  throw new UsageError(message);
}

/**
 * The unsigned report (signature area zero) for `fields`. Refuses field values that parseReport
 * would refuse, so a simulated platform cannot emit evidence real verifiers reject.
 */
export function encodeReport(f: SnpReportFields): Uint8Array {
  if (f.version < 2 || f.version > 5) usage("encodeReport: unsupported version");
  if ((f.cpuid !== undefined) !== f.version >= 3) usage("encodeReport: cpuid is required from version 3 on");
  const v5 = f.launchMitVector !== undefined && f.currentMitVector !== undefined;
  const anyMit = f.launchMitVector !== undefined || f.currentMitVector !== undefined;
  if (anyMit !== f.version >= 5 || (anyMit && !v5)) usage("encodeReport: mitigation vectors need version 5");
  if ((f.policy & POLICY_RESERVED_ONE) === 0n || (f.policy & POLICY_MBZ) !== 0n)
    usage("encodeReport: bad policy");
  if (f.signatureAlgo !== 1) usage("encodeReport: signature algorithm must be 1");

  const out = new Uint8Array(REPORT_SIZE);
  const dv = new DataView(out.buffer);
  const u32 = (o: number, v: number): void => dv.setUint32(o, v, true);
  const u64 = (o: number, v: bigint): void => dv.setBigUint64(o, BigInt.asUintN(64, v), true);
  const put = (o: number, n: number, b: Uint8Array, name: string): void => {
    if (b.length !== n) usage(`encodeReport: ${name} has the wrong length`);
    out.set(b, o);
  };
  const fw = (o: number, v: FirmwareVersion): void => {
    out[o] = v.build;
    out[o + 1] = v.minor;
    out[o + 2] = v.major;
  };

  u32(0x000, f.version);
  u32(0x004, f.guestSvn);
  u64(0x008, f.policy);
  put(0x010, 16, f.familyId, "familyId");
  put(0x020, 16, f.imageId, "imageId");
  u32(0x030, f.vmpl);
  u32(0x034, f.signatureAlgo);
  u64(0x038, f.currentTcb);
  u64(0x040, f.platformInfo);
  const s = f.signerInfo;
  u32(0x048, (s.authorKeyEn ? 1 : 0) | (s.maskChipKey ? 2 : 0) | (SIGNING_KEY_BITS[s.signingKey] << 2));
  put(0x050, 64, f.reportData, "reportData");
  put(0x090, 48, f.measurement, "measurement");
  put(0x0c0, 32, f.hostData, "hostData");
  put(0x0e0, 48, f.idKeyDigest, "idKeyDigest");
  put(0x110, 48, f.authorKeyDigest, "authorKeyDigest");
  put(0x140, 32, f.reportId, "reportId");
  put(0x160, 32, f.reportIdMa, "reportIdMa");
  u64(0x180, f.reportedTcb);
  if (f.cpuid) {
    out[0x188] = f.cpuid.family;
    out[0x189] = f.cpuid.model;
    out[0x18a] = f.cpuid.stepping;
  }
  put(CHIP_ID, 64, f.chipId, "chipId");
  if (f.cpuid && productFromCpuid(f.cpuid.family, f.cpuid.model) === "Turin") {
    if (!isAllZero(f.chipId.subarray(TURIN_CHIP_ID_LENGTH))) usage("encodeReport: Turin chipId is 8 bytes");
  }
  u64(0x1e0, f.committedTcb);
  fw(0x1e8, f.currentVersion);
  fw(0x1ec, f.committedVersion);
  u64(0x1f0, f.launchTcb);
  if (v5) {
    u64(0x1f8, f.launchMitVector!);
    u64(0x200, f.currentMitVector!);
  }
  return out;
}

/**
 * Places an ECDSA P-384 signature (raw big-endian r || s, 96 bytes, as WebCrypto returns it)
 * into a copy of `unsigned`, as the little-endian zero-padded R and S slots.
 */
export function placeSignature(unsigned: Uint8Array, rs: Uint8Array): Uint8Array {
  if (unsigned.length !== REPORT_SIZE) usage("placeSignature: report is not 1184 bytes");
  if (rs.length !== 2 * SCALAR) usage("placeSignature: signature is not 96 bytes");
  const out = unsigned.slice();
  out.fill(0, SIG_R);
  for (let i = 0; i < SCALAR; i++) {
    out[SIG_R + i] = rs[SCALAR - 1 - i]!;
    out[SIG_S + i] = rs[2 * SCALAR - 1 - i]!;
  }
  return out;
}
