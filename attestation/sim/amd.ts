/**
 * A simulated AMD key hierarchy: ARK and ASK (RSA-4096, RSASSA-PSS SHA-384, salt 48) and a
 * VCEK (EC P-384) with AMD's TCB and hwID extensions, shaped like the certificates AMD's KDS
 * issues so the project's verifier and stock openssl treat them alike.
 */
import * as asn1js from "asn1js";
import { fromHex, toHex } from "../bytes.js";
import { UsageError } from "../errors.js";
import { DEFAULT_MINIMUM_TCB } from "../snp/policy.js";
import { x509 } from "../x509.js";
import { SIMULATED_ORG } from "./names.js";

export type SimProduct = "Milan" | "Genoa" | "Turin";

export interface SimTcb {
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
  /** Turin only. */
  fmc?: number;
}

export interface SimAmdChain {
  product: SimProduct;
  ark: x509.X509Certificate;
  ask: x509.X509Certificate;
  vcek: x509.X509Certificate;
  vcekKey: CryptoKey;
  /** 64 bytes; on Turin the first 8 are the id and the rest zero. */
  chipId: Uint8Array;
  tcb: SimTcb;
  /**
   * The ARK and ASK private keys, only on a chain made in this process (never exported): tests
   * sign CRLs with them (signSimCrl).
   */
  arkKey?: CryptoKey;
  askKey?: CryptoKey;
}

const AMD_OID = "1.3.6.1.4.1.3704.1";
const RSA_PSS: RsaHashedKeyGenParams = {
  name: "RSA-PSS",
  modulusLength: 4096,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-384",
};
const PSS_SIGN = { name: "RSA-PSS", hash: "SHA-384", saltLength: 48 } as const;
const DAY = 86_400_000;

function amdName(cn: string): string {
  return `OU=Engineering, C=US, L=Santa Clara, ST=CA, O=${SIMULATED_ORG}, CN=${cn}`;
}

function derInteger(n: number): ArrayBuffer {
  return new asn1js.Integer({ value: n }).toBER();
}

function ia5(s: string): ArrayBuffer {
  return new asn1js.IA5String({ value: s }).toBER();
}

function amdExtensions(product: SimProduct, tcb: SimTcb, chipId: Uint8Array): x509.Extension[] {
  const ext = (oid: string, value: ArrayBuffer) => new x509.Extension(`${AMD_OID}.${oid}`, false, value);
  const list = [
    ext("1", derInteger(product === "Turin" ? 1 : 0)),
    ext("2", ia5(product === "Milan" ? "Milan-B0" : product)),
    ext("3.1", derInteger(tcb.bl)),
    ext("3.2", derInteger(tcb.tee)),
    ext("3.3", derInteger(tcb.snp)),
    ext("3.4", derInteger(0)),
    ext("3.5", derInteger(0)),
    ext("3.6", derInteger(0)),
    ext("3.7", derInteger(0)),
    ext("3.8", derInteger(tcb.ucode)),
  ];
  if (product === "Turin") list.push(ext("3.9", derInteger(tcb.fmc ?? 0)));
  // hwID goes in raw, without an inner OCTET STRING, as AMD's KDS does.
  const hwId = product === "Turin" ? chipId.slice(0, 8) : chipId;
  list.push(ext("4", hwId.slice().buffer));
  return list;
}

/**
 * Real-looking TCBs (those of the patched real reports in shared/vectors), raised where needed to
 * the shipped minimum, so simulated evidence passes the default policy.
 */
const REALISTIC_TCB: Record<SimProduct, SimTcb> = {
  Milan: { bl: 4, tee: 0, snp: 24, ucode: 219 },
  Genoa: { bl: 10, tee: 0, snp: 25, ucode: 84 },
  Turin: { fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 },
};

export function defaultSimTcb(product: SimProduct): SimTcb {
  const real = REALISTIC_TCB[product];
  const min = DEFAULT_MINIMUM_TCB[product];
  const out: SimTcb = {
    bl: Math.max(real.bl, min.bl),
    tee: Math.max(real.tee, min.tee),
    snp: Math.max(real.snp, min.snp),
    ucode: Math.max(real.ucode, min.ucode),
  };
  if (product === "Turin") out.fmc = Math.max(real.fmc ?? 0, min.fmc ?? 0);
  return out;
}

function serial(n: number): string {
  return n.toString(16).padStart(2, "0");
}

export interface SimAmdOptions {
  product?: SimProduct;
  tcb?: SimTcb;
  chipId?: Uint8Array;
  /** Start of validity; the chain is valid for 25 years (VCEK 7) from it. */
  notBefore?: Date;
}

export async function createSimAmdChain(opts: SimAmdOptions = {}): Promise<SimAmdChain> {
  const product = opts.product ?? "Genoa";
  const tcb = opts.tcb ?? defaultSimTcb(product);
  const chipId = opts.chipId ?? simChipId(product);
  const notBefore = opts.notBefore ?? new Date(Date.now() - DAY);
  const years = (y: number) => new Date(notBefore.getTime() + y * 365 * DAY);

  const [arkKeys, askKeys] = await Promise.all([
    crypto.subtle.generateKey(RSA_PSS, true, ["sign", "verify"]) as Promise<CryptoKeyPair>,
    crypto.subtle.generateKey(RSA_PSS, true, ["sign", "verify"]) as Promise<CryptoKeyPair>,
  ]);
  const vcekKeys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;

  const ark = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "010000",
    name: amdName(`ARK-${product}`),
    notBefore,
    notAfter: years(25),
    signingAlgorithm: PSS_SIGN,
    keys: arkKeys,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(arkKeys.publicKey),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ],
  });
  const ask = await x509.X509CertificateGenerator.create({
    serialNumber: "010001",
    subject: amdName(`SEV-${product}`),
    issuer: ark.subject,
    notBefore,
    notAfter: years(25),
    signingAlgorithm: PSS_SIGN,
    publicKey: askKeys.publicKey,
    signingKey: arkKeys.privateKey,
    extensions: [
      await x509.SubjectKeyIdentifierExtension.create(askKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(arkKeys.publicKey),
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const vcek = await x509.X509CertificateGenerator.create({
    serialNumber: serial(0),
    subject: amdName("SEV-VCEK"),
    issuer: ask.subject,
    notBefore,
    notAfter: years(7),
    signingAlgorithm: PSS_SIGN,
    publicKey: vcekKeys.publicKey,
    signingKey: askKeys.privateKey,
    extensions: amdExtensions(product, tcb, chipId),
  });
  return {
    product,
    ark,
    ask,
    vcek,
    vcekKey: vcekKeys.privateKey,
    chipId,
    tcb,
    arkKey: arkKeys.privateKey,
    askKey: askKeys.privateKey,
  };
}

export interface SimCrlOptions {
  /** "ark": a CRL of ASKs, as AMD's KDS serves; "ask": a CRL of VCEKs. */
  issuer: "ark" | "ask";
  /** Certificates to list as revoked. */
  revoke?: x509.X509Certificate[];
  thisUpdate?: Date;
  /** Omitted: no nextUpdate field. */
  nextUpdate?: Date;
}

/** A DER CRL signed like AMD's (RSASSA-PSS SHA-384 salt 48) by the chain's ARK or ASK. */
export async function signSimCrl(chain: SimAmdChain, o: SimCrlOptions): Promise<Uint8Array> {
  const issuer = o.issuer === "ark" ? chain.ark : chain.ask;
  const key = o.issuer === "ark" ? chain.arkKey : chain.askKey;
  if (!key) throw new UsageError("signSimCrl: the chain's private keys are not in this process");
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.subjectName,
    thisUpdate: o.thisUpdate ?? new Date(),
    ...(o.nextUpdate ? { nextUpdate: o.nextUpdate } : {}),
    entries: (o.revoke ?? []).map((c) => ({
      serialNumber: c.serialNumber,
      revocationDate: new Date(),
      reason: x509.X509CrlReason.keyCompromise,
    })),
    signingAlgorithm: PSS_SIGN,
    signingKey: key,
  });
  return new Uint8Array(crl.rawData);
}

/** A random-looking but fixed-shape chip id: 64 bytes, or 8 + 56 zero bytes on Turin. */
export function simChipId(product: SimProduct): Uint8Array {
  const id = new Uint8Array(64);
  crypto.getRandomValues(product === "Turin" ? id.subarray(0, 8) : id);
  return id;
}

/** Persistable form: certificates as PEM, the VCEK private key as PKCS#8 PEM. */
export interface SimAmdExport {
  product: SimProduct;
  arkPem: string;
  askPem: string;
  vcekPem: string;
  vcekKeyPkcs8: string;
  chipIdHex: string;
  tcb: SimTcb;
}

export async function exportSimAmdChain(c: SimAmdChain): Promise<SimAmdExport> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", c.vcekKey));
  return {
    product: c.product,
    arkPem: c.ark.toString("pem"),
    askPem: c.ask.toString("pem"),
    vcekPem: c.vcek.toString("pem"),
    vcekKeyPkcs8: x509.PemConverter.encode(pkcs8.buffer, "PRIVATE KEY"),
    chipIdHex: toHex(c.chipId),
    tcb: c.tcb,
  };
}

export async function importSimAmdChain(e: SimAmdExport): Promise<SimAmdChain> {
  const der = x509.PemConverter.decodeFirst(e.vcekKeyPkcs8);
  const vcekKey = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-384" }, false, [
    "sign",
  ]);
  return {
    product: e.product,
    ark: new x509.X509Certificate(e.arkPem),
    ask: new x509.X509Certificate(e.askPem),
    vcek: new x509.X509Certificate(e.vcekPem),
    vcekKey,
    chipId: fromHex(e.chipIdHex),
    tcb: e.tcb,
  };
}
