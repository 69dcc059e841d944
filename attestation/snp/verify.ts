/**
 * Signatures and the certificate chain: ARK → ASK (or ASVK) → VCEK (or VLEK) → report.
 * Answers "did AMD's hardware sign these bytes?", never "is this acceptable?" (see policy.ts).
 */

import { bytesEqual, concatBytes, isAllZero, sha256, toHex } from "../bytes.js";
import {
  CertificateError,
  EvidenceFormatError,
  SignatureError,
  SimulatedEvidenceError,
  UntrustedRootError,
} from "../errors.js";
import {
  type AmdKeyExtensions,
  type ChainCertificate,
  type EndorsementKind,
  organizations,
  parseAmdExtensions,
  parseCertificate,
  toDer,
} from "./certs.js";
import { checkRevocation } from "./crl.js";
import type { SnpProduct } from "./product.js";
import { chipIdFor, type SnpReport } from "./report.js";
import { type IntermediateKind, PINNED_ROOTS } from "./roots.js";
import { rsaPssKey, type SignatureKey, signatureBackend, signedBy as signedByKey } from "./signature.js";
import { decodeTcb } from "./tcb.js";

/** Certificates as DER or PEM. Without ask/ark the pinned ones are used. */
export interface SnpChainInput {
  vcek: Uint8Array | string;
  ask?: Uint8Array | string;
  ark?: Uint8Array | string;
}

export interface SnpVerifyOptions {
  /** Verification time for certificate validity; default now. */
  at?: Date;
  /** Extra trusted ARKs (a simulated platform's root, DER or PEM); chains to them are `simulated`. */
  trustedArks?: (Uint8Array | string)[];
  /** Expected product; must agree with the report's CPUID and with the chain. */
  product?: SnpProduct;
  /**
   * CRLs (DER or PEM) from AMD's KDS or the operator. Each one issued by this chain's ARK or
   * ASK/ASVK must verify under it and be current at `at`; a listed ASK/ASVK or VCEK/VLEK is
   * refused (RevokedError). When any is given, at least one must belong to this chain.
   */
  crls?: (Uint8Array | string)[];
}

/** Step names, in the order verifyReportChain runs them; callers report the first failed one. */
export const VERIFY_STEPS = [
  "ARK pinned",
  "ASK signed by ARK",
  "VCEK signed by ASK",
  "certificate validity",
  "certificates not revoked",
  "signing key matches certificate",
  "report signature",
  "TCB matches certificate",
  "chip id matches certificate",
] as const;
export type VerifyStep = (typeof VERIFY_STEPS)[number];

export interface VerifiedChain {
  /** The product of the pinned ARK; undefined for an explicitly trusted (simulated) ARK. */
  product: SnpProduct | undefined;
  simulated: boolean;
  kind: EndorsementKind;
  extensions: AmdKeyExtensions;
  /** The VCEK/VLEK key, for the report signature. */
  key: SignatureKey;
  arkDer: Uint8Array;
  /** The three certificates as verified, root first (for the CRL check). */
  ark: ChainCertificate;
  ask: ChainCertificate;
  leaf: ChainCertificate;
  notBefore: Date;
  notAfter: Date;
}

export interface VerifiedReport {
  product: SnpProduct;
  simulated: boolean;
  kind: EndorsementKind;
  extensions: AmdKeyExtensions;
}

const SIMULATED_ORG = "cleanroom-simulated";
const EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const SECP384R1 = "1.3.132.0.34";

interface PinnedParsed {
  product: SnpProduct;
  ark: ChainCertificate;
  intermediates: { kind: IntermediateKind; cert: ChainCertificate }[];
}
let pinnedCache: PinnedParsed[] | undefined;
/** Every pinned certificate as parsed once per process; membership means "these exact bytes". */
const pinnedCerts = new Set<ChainCertificate>();

function pinned(): PinnedParsed[] {
  if (pinnedCache) return pinnedCache;
  pinnedCache = PINNED_ROOTS.map((r) => ({
    product: r.product,
    ark: parseCertificate(toDer(r.ark)),
    intermediates: r.intermediates.map((i) => ({ kind: i.kind, cert: parseCertificate(toDer(i.pem)) })),
  }));
  for (const p of pinnedCache) {
    pinnedCerts.add(p.ark);
    for (const i of p.intermediates) pinnedCerts.add(i.cert);
  }
  return pinnedCache;
}

/** The pinned ASK/ASVK whose DER is exactly `der`, so it is neither parsed nor checked again. */
function pinnedIntermediate(der: Uint8Array): ChainCertificate | undefined {
  for (const p of pinned()) {
    for (const i of p.intermediates) if (bytesEqual(i.cert.der, der)) return i.cert;
  }
  return undefined;
}

/** Keys of pinned certificates, imported once per process. */
const pinnedKeys = new Map<ChainCertificate, Promise<SignatureKey>>();
/**
 * Signatures between two pinned certificates that verified in this process, subject → issuers.
 * Both ends are the objects parsed from roots.ts, reached only through an exact-bytes match, so
 * a certificate that merely carries a pinned one's name (a simulated root mimicking AMD's, a
 * tampered copy of a pinned ASK) is never in here and is checked every time.
 */
const pinnedSignatures = new Map<ChainCertificate, Set<ChainCertificate>>();

function issuerKey(issuer: ChainCertificate): Promise<SignatureKey> {
  if (!pinnedCerts.has(issuer)) return rsaPssKey(issuer.spki);
  let key = pinnedKeys.get(issuer);
  if (!key) {
    key = rsaPssKey(issuer.spki);
    pinnedKeys.set(issuer, key);
  }
  return key;
}

/**
 * True when `issuer` signed `cert` (RSASSA-PSS, SHA-384, salt 48). A pinned root is a constant of
 * this code, so its self-signature and its signatures over the pinned ASK/ASVK are checked once
 * per process; everything else is checked on every call.
 */
async function signedBy(cert: ChainCertificate, issuer: ChainCertificate): Promise<boolean> {
  const bothPinned = pinnedCerts.has(cert) && pinnedCerts.has(issuer);
  if (bothPinned && pinnedSignatures.get(cert)?.has(issuer)) return true;
  const ok = await signedByKey(cert, await issuerKey(issuer));
  if (ok && bothPinned) {
    const issuers = pinnedSignatures.get(cert) ?? new Set<ChainCertificate>();
    issuers.add(issuer);
    pinnedSignatures.set(cert, issuers);
  }
  return ok;
}

function importEndorsementKey(cert: ChainCertificate): Promise<SignatureKey> {
  if (cert.publicKeyAlgorithmOid !== EC_PUBLIC_KEY || cert.publicKeyParamsOid !== SECP384R1) {
    throw new CertificateError("certificate: endorsement key is not EC P-384");
  }
  return signatureBackend.ecdsaP384(cert.spki);
}

/** The error for a chain whose root is not trusted: simulated roots get their own code. */
function untrusted(rootSubject: Uint8Array): never {
  if (organizations(rootSubject).includes(SIMULATED_ORG)) {
    throw new SimulatedEvidenceError(
      "evidence is from a simulated platform; trust its root explicitly to accept it",
    );
  }
  throw new UntrustedRootError("certificate chain does not end at a pinned AMD root");
}

interface TrustedArk {
  cert: ChainCertificate;
  product: SnpProduct | undefined;
}

function trustAnchors(trustedArks: Uint8Array[]): TrustedArk[] {
  return [
    ...pinned().map((p) => ({ cert: p.ark, product: p.product })),
    ...trustedArks.map((der) => ({ cert: parseCertificate(der), product: undefined })),
  ];
}

async function buildChain(
  input: { vcek: Uint8Array; ask: Uint8Array | undefined; ark: Uint8Array | undefined },
  trustedArks: Uint8Array[],
  onStep: (s: VerifyStep) => void,
): Promise<VerifiedChain> {
  const leaf = parseCertificate(input.vcek);
  const extensions = parseAmdExtensions(leaf);
  const wantKind: IntermediateKind = extensions.kind === "VCEK" ? "ASK" : "ASVK";
  let anchors = trustAnchors(trustedArks);

  if (input.ark) {
    const arkDer = input.ark;
    const match = anchors.find((a) => bytesEqual(a.cert.der, arkDer));
    if (!match) untrusted(parseCertificate(arkDer).subject);
    anchors = [match];
  }

  const intermediates: ChainCertificate[] = input.ask
    ? [pinnedIntermediate(input.ask) ?? parseCertificate(input.ask)]
    : pinned().flatMap((p) => p.intermediates.filter((i) => i.kind === wantKind).map((i) => i.cert));
  const ask = intermediates.find((c) => bytesEqual(c.subject, leaf.issuer));
  if (!ask) throw new CertificateError("certificate: no intermediate issued the endorsement key");

  // Several anchors may share a subject name (a simulated root may mimic AMD's): the one whose
  // signature verifies is the root.
  const named = anchors.filter((a) => bytesEqual(a.cert.subject, ask.issuer));
  if (named.length === 0) untrusted(ask.issuer);
  let anchor: TrustedArk | undefined;
  for (const a of named) {
    if (!bytesEqual(a.cert.subject, a.cert.issuer) || !(await signedBy(a.cert, a.cert))) continue;
    if (await signedBy(ask, a.cert)) {
      anchor = a;
      break;
    }
  }
  if (!anchor) throw new SignatureError("certificate: ASK not signed by a trusted ARK");
  onStep("ARK pinned");
  onStep("ASK signed by ARK");
  if (!(await signedBy(leaf, ask))) throw new SignatureError("certificate: VCEK not signed by ASK");
  onStep("VCEK signed by ASK");

  const chain = [anchor.cert, ask, leaf];
  return {
    product: anchor.product,
    simulated: anchor.product === undefined,
    kind: extensions.kind,
    extensions,
    key: await importEndorsementKey(leaf),
    arkDer: anchor.cert.der,
    ark: anchor.cert,
    ask,
    leaf,
    notBefore: new Date(Math.max(...chain.map((c) => c.notBefore.getTime()))),
    notAfter: new Date(Math.min(...chain.map((c) => c.notAfter.getTime()))),
  };
}

const CACHE_LIMIT = 128;
const chainCache = new Map<string, VerifiedChain>();

/** Forgets every verified chain (benchmarks measure cold verification with it). */
export function clearChainCache(): void {
  chainCache.clear();
}

/** SHA-256 over the certificates as given, each framed by its kind and length. */
async function cacheKey(parts: (Uint8Array | string | undefined)[]): Promise<string> {
  const framed: Uint8Array[] = [];
  for (const p of parts) {
    const body =
      p === undefined ? new Uint8Array(0) : typeof p === "string" ? new TextEncoder().encode(p) : p;
    const head = new Uint8Array(5);
    head[0] = p === undefined ? 0 : typeof p === "string" ? 1 : 2;
    new DataView(head.buffer).setUint32(1, body.length);
    framed.push(head, body);
  }
  return toHex(await sha256(concatBytes(...framed)));
}

/**
 * Verifies ARK → ASK/ASVK → VCEK/VLEK signatures; cached by a SHA-256 of the certificates' bytes,
 * so a warm call does no signature check at all. A cached chain whose ARK is trusted only through
 * `trustedArks` is used again only when the caller still trusts that ARK.
 */
export async function verifyChain(
  certs: SnpChainInput,
  options: Pick<SnpVerifyOptions, "trustedArks"> = {},
  onStep: (s: VerifyStep) => void = () => {},
): Promise<VerifiedChain> {
  const key = await cacheKey([certs.ark, certs.ask, certs.vcek]);
  const trustedArks = (options.trustedArks ?? []).map(toDer);
  const hit = chainCache.get(key);
  if (hit && (!hit.simulated || trustedArks.some((a) => bytesEqual(a, hit.arkDer)))) {
    onStep("ARK pinned");
    onStep("ASK signed by ARK");
    onStep("VCEK signed by ASK");
    return hit;
  }
  const input = {
    vcek: toDer(certs.vcek),
    ask: certs.ask === undefined ? undefined : toDer(certs.ask),
    ark: certs.ark === undefined ? undefined : toDer(certs.ark),
  };
  const chain = await buildChain(input, trustedArks, onStep);
  if (chainCache.size >= CACHE_LIMIT) chainCache.delete(chainCache.keys().next().value!);
  chainCache.set(key, chain);
  return chain;
}

export function checkValidity(chain: VerifiedChain, at: Date): void {
  const t = at.getTime();
  if (Number.isNaN(t)) throw new CertificateError("certificate: verification time is invalid");
  if (t < chain.notBefore.getTime()) throw new CertificateError("certificate: not yet valid");
  if (t > chain.notAfter.getTime()) throw new CertificateError("certificate: expired");
}

/** One product from CPUID, configuration and chain; any two that are known must agree. */
export function resolveProduct(report: SnpReport, chain: VerifiedChain, expected?: SnpProduct): SnpProduct {
  const known = [report.product, expected, chain.product].filter((p): p is SnpProduct => p !== undefined);
  if (known.length === 0) throw new EvidenceFormatError("report: product cannot be determined");
  if (known.some((p) => p !== known[0]))
    throw new CertificateError("certificate: product does not match report");
  return known[0]!;
}

export async function verifyReportSignature(report: SnpReport, key: SignatureKey): Promise<void> {
  const ok = await key.verify(report.signature, report.signedBytes);
  if (!ok) throw new SignatureError("report: signature does not verify");
}

export function checkSigningKey(report: SnpReport, chain: VerifiedChain): void {
  if (report.signerInfo.signingKey !== chain.kind) {
    throw new SignatureError("report: signing key kind differs from the certificate");
  }
}

/** The certificate is issued for REPORTED_TCB (CURRENT_TCB may be newer firmware). */
export function checkTcbMatches(report: SnpReport, ext: AmdKeyExtensions, product: SnpProduct): void {
  const tcb = decodeTcb(report.reportedTcb, product);
  const same =
    tcb.bl === ext.tcb.bl &&
    tcb.tee === ext.tcb.tee &&
    tcb.snp === ext.tcb.snp &&
    tcb.ucode === ext.tcb.ucode &&
    tcb.fmc === ext.tcb.fmc;
  if (!same) throw new CertificateError("certificate: TCB does not match report reported_tcb");
}

/** Returns what was compared: "hwID", "masked" or "VLEK". */
export function checkChipId(report: SnpReport, ext: AmdKeyExtensions, product: SnpProduct): string {
  if (report.signerInfo.maskChipKey || ext.kind === "VLEK") {
    if (!isAllZero(report.chipId)) throw new EvidenceFormatError("report: masked CHIP_ID not zero");
    return report.signerInfo.maskChipKey ? "masked" : "VLEK";
  }
  if (!ext.hwId || !bytesEqual(ext.hwId, chipIdFor(report, product))) {
    throw new CertificateError("certificate: hwID does not match report CHIP_ID");
  }
  return "hwID";
}

/**
 * All of verification after parsing: chain, validity at `options.at`, revocation (when CRLs are
 * given), report signature, and the certificate's TCB and chip id against the report. Throws the
 * first failure.
 */
export async function verifyReportChain(
  report: SnpReport,
  certs: SnpChainInput,
  options: SnpVerifyOptions = {},
  onStep: (s: VerifyStep, detail?: string) => void = () => {},
): Promise<VerifiedReport> {
  const chain = await verifyChain(certs, options, onStep);
  const at = options.at ?? new Date();
  checkValidity(chain, at);
  onStep("certificate validity");
  onStep("certificates not revoked", await checkRevocation(chain, options.crls ?? [], at));
  const product = resolveProduct(report, chain, options.product);
  checkSigningKey(report, chain);
  onStep("signing key matches certificate", chain.kind);
  await verifyReportSignature(report, chain.key);
  onStep("report signature");
  checkTcbMatches(report, chain.extensions, product);
  onStep("TCB matches certificate");
  onStep("chip id matches certificate", checkChipId(report, chain.extensions, product));
  return { product, simulated: chain.simulated, kind: chain.kind, extensions: chain.extensions };
}
