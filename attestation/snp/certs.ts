/**
 * X.509 certificates of the AMD chain: DER/PEM input, the fields verification needs, and the
 * VCEK/VLEK AMD extensions (OIDs 1.3.6.1.4.1.3704.1.*, go-sev-guest `kds/kds.go`). Parsing only.
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import { Name as AsnName } from "@peculiar/asn1-x509";
import { bytesEqual } from "../bytes.js";
import { DerReader, type Tlv } from "../der.js";
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

function bad(message: string): never {
  throw new CertificateError(message);
}

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

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";

/**
 * An AlgorithmIdentifier: SEQUENCE { OID, parameters OPTIONAL }, parameters as raw DER. The
 * parameters any algorithm here uses: NULL (RSA keys), an OID (EC curves), a SEQUENCE (RSA-PSS).
 */
function algorithm(r: DerReader, t: Tlv): { oid: string; params: Uint8Array | undefined } {
  if (t.tag !== 0x30) bad("certificate: malformed DER");
  const parts = r.children(t);
  if (parts.length < 1 || parts.length > 2) bad("certificate: malformed DER");
  const params = parts[1];
  if (
    params &&
    !(
      params.tag === 0x06 ||
      params.tag === 0x30 ||
      (params.tag === 0x05 && params.end === params.contentStart)
    )
  )
    bad("certificate: malformed DER");
  return { oid: r.oid(parts[0]!), params: params === undefined ? undefined : r.raw(params) };
}

/**
 * Attribute value types a Name may use, with the length unit of each: UTF8String, PrintableString,
 * TeletexString, IA5String, BMPString (2-byte units), UniversalString (4-byte units).
 */
const NAME_STRING_UNITS = new Map([
  [0x0c, 1],
  [0x13, 1],
  [0x14, 1],
  [0x16, 1],
  [0x1e, 2],
  [0x1c, 4],
]);

/** A Name: SEQUENCE OF non-empty SET OF SEQUENCE { OID, string }; kept as its DER bytes. */
function checkName(r: DerReader, t: Tlv): void {
  for (const rdn of r.children(t)) {
    const attributes = rdn.tag === 0x31 ? r.children(rdn) : [];
    if (attributes.length === 0) bad("certificate: malformed DER");
    for (const a of attributes) {
      const parts = a.tag === 0x30 ? r.children(a) : [];
      const unit = NAME_STRING_UNITS.get(parts[1]?.tag ?? -1);
      if (parts.length !== 2 || unit === undefined || r.content(parts[1]!).length % unit !== 0)
        bad("certificate: malformed DER");
      r.oid(parts[0]!);
    }
  }
}

/**
 * Parses one DER certificate with the strict DER walker (attestation/der.ts): definite minimal
 * lengths, every field where RFC 5280 puts it, nothing after it, the inner and outer signature
 * algorithms identical (as Go's x509 requires). Strict about its extent: bytes after the
 * certificate (a padded certificate-table entry, a file with junk appended) are refused, as Go's
 * x509 does. The fields are views into a private copy of `der`, so later changes to the caller's
 * bytes cannot alter a parsed (or cached) certificate.
 */
export function parseCertificate(input: Uint8Array): ChainCertificate {
  if (derSequenceLength(input) !== input.length) bad("certificate: not exactly one DER certificate");
  const der = input.slice();
  const r = new DerReader(der, () => bad("certificate: malformed DER"));
  const top = r.children(r.whole(0x30));
  if (top.length !== 3 || top[0]!.tag !== 0x30 || top[2]!.tag !== 0x03) bad("certificate: malformed DER");
  const [tbsTlv, algTlv, sigTlv] = top as [Tlv, Tlv, Tlv];
  const outer = algorithm(r, algTlv);

  const fields = r.children(tbsTlv);
  let i = 0;
  if (fields[0]?.tag === 0xa0) {
    const version = r.children(fields[i++]!);
    const v = version.length === 1 && version[0]!.tag === 0x02 ? r.content(version[0]!) : undefined;
    if (v === undefined || v.length !== 1 || v[0]! > 2) bad("certificate: malformed DER");
  }
  const [serial, innerAlg, issuer, validity, subject, spkiTlv] = fields.slice(i, i + 6);
  i += 6;
  if (
    serial?.tag !== 0x02 ||
    innerAlg?.tag !== 0x30 ||
    issuer?.tag !== 0x30 ||
    validity?.tag !== 0x30 ||
    subject?.tag !== 0x30 ||
    spkiTlv?.tag !== 0x30
  )
    bad("certificate: malformed DER");
  checkName(r, issuer);
  checkName(r, subject);
  const serialBytes = r.content(serial);
  if (serialBytes.length === 0) bad("certificate: malformed DER");
  if (!bytesEqual(r.raw(innerAlg), r.raw(algTlv)))
    bad("certificate: inner and outer signature algorithms differ");
  const times = r.children(validity);
  if (times.length !== 2 || times.some((t) => t.tag !== 0x17 && t.tag !== 0x18))
    bad("certificate: malformed DER");
  const spkiParts = r.children(spkiTlv);
  const keyBits = spkiParts.length === 2 && spkiParts[1]!.tag === 0x03 ? r.content(spkiParts[1]!) : undefined;
  if (keyBits === undefined || keyBits.length < 2 || keyBits[0] !== 0) bad("certificate: malformed DER");
  const keyAlg = algorithm(r, spkiParts[0]!);
  let publicKeyParamsOid: string | undefined;
  if (keyAlg.params && keyAlg.oid === OID_EC_PUBLIC_KEY) {
    const params = new DerReader(keyAlg.params, () => bad("certificate: malformed EC parameters"));
    publicKeyParamsOid = params.oid(params.whole(0x06));
  }
  // Optional issuerUniqueID [1] and subjectUniqueID [2] (IMPLICIT BIT STRINGs), then extensions [3].
  if (fields[i]?.tag === 0x81) i++;
  if (fields[i]?.tag === 0x82) i++;
  const extensions = new Map<string, Uint8Array>();
  if (fields[i]?.tag === 0xa3) {
    const wrapper = r.children(fields[i++]!);
    if (wrapper.length !== 1 || wrapper[0]!.tag !== 0x30) bad("certificate: malformed DER");
    for (const ext of r.children(wrapper[0]!)) {
      if (ext.tag !== 0x30) bad("certificate: malformed DER");
      const parts = r.children(ext);
      const value = parts[parts.length - 1];
      if (parts.length < 2 || parts.length > 3 || value?.tag !== 0x04) bad("certificate: malformed DER");
      if (parts.length === 3) {
        const flag = r.content(parts[1]!);
        if (parts[1]!.tag !== 0x01 || flag.length !== 1 || (flag[0] !== 0 && flag[0] !== 0xff))
          bad("certificate: malformed DER");
      }
      const id = r.oid(parts[0]!);
      if (extensions.has(id)) bad("certificate: duplicate extension");
      extensions.set(id, r.content(value));
    }
  }
  if (i !== fields.length) bad("certificate: malformed DER");
  const bits = r.content(sigTlv);
  if (bits.length < 2 || bits[0] !== 0) bad("certificate: malformed DER");
  return {
    der,
    serialNumber: normalizeSerial(serialBytes),
    tbs: r.raw(tbsTlv),
    signatureAlgorithmOid: outer.oid,
    signatureAlgorithmParams: outer.params,
    signature: bits.subarray(1),
    spki: r.raw(spkiTlv),
    publicKeyAlgorithmOid: keyAlg.oid,
    publicKeyParamsOid,
    subject: r.raw(subject),
    issuer: r.raw(issuer),
    notBefore: r.time(times[0]!),
    notAfter: r.time(times[1]!),
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

/** An SPL extension: a DER INTEGER in 0..255. */
function spl(ext: Map<string, Uint8Array>, oid: string): number | undefined {
  const v = ext.get(oid);
  if (v === undefined) return undefined;
  const r = new DerReader(v, () => bad("certificate: malformed SPL extension"));
  const n = r.content(r.whole(0x02));
  // Empty, or a non-minimal encoding (a redundant leading 0x00 or 0xff byte), is not DER.
  if (n.length === 0 || (n.length > 1 && ((n[0] === 0 && n[1]! < 0x80) || (n[0] === 0xff && n[1]! >= 0x80))))
    bad("certificate: malformed SPL extension");
  const value = n.length === 1 ? n[0]! : n.length === 2 && n[0] === 0 ? n[1]! : -1;
  if ((n[0]! & 0x80) !== 0 || value < 0) bad("certificate: SPL extension out of range");
  return value;
}

/** A string extension: a DER IA5String (ASCII). */
function ia5(ext: Map<string, Uint8Array>, oid: string): string | undefined {
  const v = ext.get(oid);
  if (v === undefined) return undefined;
  const r = new DerReader(v, () => bad("certificate: malformed string extension"));
  const chars = r.content(r.whole(0x16));
  if (chars.some((c) => c > 0x7f)) bad("certificate: malformed string extension");
  return new TextDecoder().decode(chars);
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
