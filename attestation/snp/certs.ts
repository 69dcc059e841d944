/**
 * X.509 certificates of the AMD chain: DER/PEM input, the fields verification needs, and the
 * VCEK/VLEK AMD extensions (OIDs 1.3.6.1.4.1.3704.1.*, go-sev-guest `kds/kds.go`). Parsing only.
 */
import { AsnConvert, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from "@peculiar/asn1-schema";
import { Name as AsnName, Certificate } from "@peculiar/asn1-x509";
import { CertificateError } from "../errors.js";
import type { TcbVersion } from "./tcb.js";

export { certificatesFromInput, toDer } from "../pem.js";

/** A parsed certificate: the raw parts a signature check needs, plus validity and names. */
export interface ChainCertificate {
  der: Uint8Array;
  /** The serial number's INTEGER content bytes, leading zero bytes removed (CRL lookups). */
  serialNumber: Uint8Array;
  tbs: Uint8Array;
  signatureAlgorithmOid: string;
  signatureAlgorithmParams: Uint8Array | undefined;
  signature: Uint8Array;
  spki: Uint8Array;
  publicKeyAlgorithmOid: string;
  publicKeyParamsOid: string | undefined;
  subject: Uint8Array;
  issuer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  extensions: Map<string, Uint8Array>;
}

export type EndorsementKind = "VCEK" | "VLEK";

/** The AMD extensions of a VCEK or VLEK. `tcb.fmc` appears on Turin certificates only. */
export interface AmdKeyExtensions {
  kind: EndorsementKind;
  structVersion?: number;
  productName?: string;
  tcb: TcbVersion;
  /** VCEK: the chip id, stored raw in extnValue (64 bytes; 8 on Turin). */
  hwId?: Uint8Array;
  /** VLEK: the cloud provider that holds the key, e.g. "CN=cc-us-east-2.amazonaws.com". */
  cspId?: string;
}

const AMD = "1.3.6.1.4.1.3704.1.";
export const OID_STRUCT_VERSION = `${AMD}1`;
export const OID_PRODUCT_NAME = `${AMD}2`;
export const OID_BL_SPL = `${AMD}3.1`;
export const OID_TEE_SPL = `${AMD}3.2`;
export const OID_SNP_SPL = `${AMD}3.3`;
export const OID_UCODE_SPL = `${AMD}3.8`;
export const OID_FMC_SPL = `${AMD}3.9`;
export const OID_HWID = `${AMD}4`;
export const OID_CSP_ID = `${AMD}5`;

// Minimal ASN.1 schemas for the extension values; decorators applied as plain calls because
// the project compiles without experimentalDecorators.
class DerInteger {
  value = 0;
}
AsnProp({ type: AsnPropTypes.Integer })(DerInteger.prototype, "value");
AsnType({ type: AsnTypeTypes.Choice })(DerInteger);

class DerIa5String {
  value = "";
}
AsnProp({ type: AsnPropTypes.IA5String })(DerIa5String.prototype, "value");
AsnType({ type: AsnTypeTypes.Choice })(DerIa5String);

class ObjectIdentifierHolder {
  value = "";
}
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(ObjectIdentifierHolder.prototype, "value");
AsnType({ type: AsnTypeTypes.Choice })(ObjectIdentifierHolder);

function bad(message: string): never {
  throw new CertificateError(message);
}

const bytes = (b: ArrayBuffer | ArrayBufferView): Uint8Array =>
  b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * The length of the DER SEQUENCE that starts `der` (header included), or undefined when the
 * header is not a definite, minimal DER length. Used to refuse bytes after the object.
 */
export function derSequenceLength(der: Uint8Array): number | undefined {
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  // 0x80 is BER's indefinite length; more than 4 length bytes is beyond any certificate here.
  if (n === 0 || n > 4 || der.length < 2 + n || der[2] === 0) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  if (len < 0x80) return undefined; // the short form was required
  return 2 + n + len;
}

/** Strips the zero bytes DER puts before a positive INTEGER whose top bit is set (keeps one byte). */
export function normalizeSerial(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.slice(i);
}

/**
 * Parses one DER certificate. Strict about its extent: bytes after the certificate (a padded
 * certificate-table entry, a file with junk appended) are refused, as Go's x509 does.
 */
export function parseCertificate(der: Uint8Array): ChainCertificate {
  if (derSequenceLength(der) !== der.length) bad("certificate: not exactly one DER certificate");
  let c: Certificate;
  try {
    c = AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw new CertificateError("certificate: malformed DER", { cause: e });
  }
  const tbs = c.tbsCertificate;
  if (!c.tbsCertificateRaw) bad("certificate: malformed DER");
  const extensions = new Map<string, Uint8Array>();
  for (const ext of tbs.extensions ?? []) {
    if (extensions.has(ext.extnID)) bad("certificate: duplicate extension");
    extensions.set(ext.extnID, new Uint8Array(ext.extnValue.buffer));
  }
  const keyAlg = tbs.subjectPublicKeyInfo.algorithm;
  let publicKeyParamsOid: string | undefined;
  if (keyAlg.parameters && keyAlg.algorithm === "1.2.840.10045.2.1") {
    try {
      publicKeyParamsOid = AsnConvert.parse(keyAlg.parameters, ObjectIdentifierHolder).value;
    } catch (e) {
      throw new CertificateError("certificate: malformed EC parameters", { cause: e });
    }
  }
  return {
    der,
    serialNumber: normalizeSerial(bytes(tbs.serialNumber)),
    tbs: bytes(c.tbsCertificateRaw),
    signatureAlgorithmOid: c.signatureAlgorithm.algorithm,
    signatureAlgorithmParams: c.signatureAlgorithm.parameters
      ? bytes(c.signatureAlgorithm.parameters)
      : undefined,
    signature: bytes(c.signatureValue),
    spki: bytes(AsnConvert.serialize(tbs.subjectPublicKeyInfo)),
    publicKeyAlgorithmOid: keyAlg.algorithm,
    publicKeyParamsOid,
    subject: bytes(AsnConvert.serialize(tbs.subject)),
    issuer: bytes(AsnConvert.serialize(tbs.issuer)),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    extensions,
  };
}

const OID_ORGANIZATION = "2.5.4.10";

/** The organisation (O) values of a DER Name; used to recognise a simulated root. */
export function organizations(nameDer: Uint8Array): string[] {
  let name: AsnName;
  try {
    name = AsnConvert.parse(nameDer, AsnName);
  } catch (e) {
    throw new CertificateError("certificate: malformed name", { cause: e });
  }
  return name.flatMap((rdn) => rdn.filter((a) => a.type === OID_ORGANIZATION).map((a) => a.value.toString()));
}

function spl(ext: Map<string, Uint8Array>, oid: string): number | undefined {
  const v = ext.get(oid);
  if (v === undefined) return undefined;
  let n: number;
  try {
    n = AsnConvert.parse(v, DerInteger).value;
  } catch (e) {
    throw new CertificateError("certificate: malformed SPL extension", { cause: e });
  }
  if (!Number.isInteger(n) || n < 0 || n > 255) bad("certificate: SPL extension out of range");
  return n;
}

function ia5(ext: Map<string, Uint8Array>, oid: string): string | undefined {
  const v = ext.get(oid);
  if (v === undefined) return undefined;
  try {
    return AsnConvert.parse(v, DerIa5String).value;
  } catch (e) {
    throw new CertificateError("certificate: malformed string extension", { cause: e });
  }
}

/** The AMD extensions of a VCEK/VLEK; kind from hwID (VCEK) or CSP_ID (VLEK), exactly one. */
export function parseAmdExtensions(cert: ChainCertificate): AmdKeyExtensions {
  const e = cert.extensions;
  const hwId = e.get(OID_HWID);
  const cspId = ia5(e, OID_CSP_ID);
  if ((hwId === undefined) === (cspId === undefined)) bad("certificate: neither a VCEK nor a VLEK");
  const bl = spl(e, OID_BL_SPL);
  const tee = spl(e, OID_TEE_SPL);
  const snp = spl(e, OID_SNP_SPL);
  const ucode = spl(e, OID_UCODE_SPL);
  if (bl === undefined || tee === undefined || snp === undefined || ucode === undefined) {
    bad("certificate: missing TCB extension");
  }
  const tcb: TcbVersion = { bl, tee, snp, ucode };
  const fmc = spl(e, OID_FMC_SPL);
  if (fmc !== undefined) tcb.fmc = fmc;
  const out: AmdKeyExtensions = { kind: hwId ? "VCEK" : "VLEK", tcb };
  const structVersion = spl(e, OID_STRUCT_VERSION);
  if (structVersion !== undefined) out.structVersion = structVersion;
  const productName = ia5(e, OID_PRODUCT_NAME);
  if (productName !== undefined) out.productName = productName;
  if (hwId) out.hwId = hwId.slice();
  if (cspId !== undefined) out.cspId = cspId;
  return out;
}
