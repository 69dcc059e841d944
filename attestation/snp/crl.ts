/**
 * Certificate revocation lists for the AMD chain. AMD's KDS serves one per product and key kind
 * (`/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`), DER, signed by the ARK and listing revoked
 * ASKs/ASVKs; an operator may also hold a CRL signed by an ASK listing revoked VCEKs/VLEKs.
 *
 * Rules (go-sev-guest `verify.GetCrlAndCheckRoot` checks the ARK's CRL the same way):
 * - A CRL counts for this chain when its issuer name is the ARK's or the ASK's subject; then it
 *   must be signed by that certificate (RSASSA-PSS SHA-384 salt 48), whose key usage, when present,
 *   must allow CRL signing. CRLs of other chains (another product) are skipped, but when CRLs are
 *   given at least one must belong to this chain.
 * - Time is the verification time `at` (the evidence's own time for old evidence): a CRL whose
 *   nextUpdate is before `at` is out of date and refused. A CRL issued after `at` is newer
 *   knowledge and is used.
 * - A listed serial is revoked whatever its revocation date: a key is revoked because it may have
 *   been exposed before that date.
 * - Delta CRLs, indirect CRLs and any other critical extension are refused (not understood).
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, KeyUsage, KeyUsageFlags } from "@peculiar/asn1-x509";
import { bytesEqual } from "../bytes.js";
import { DerReader, type Tlv } from "../der.js";
import { CrlError, RevokedError } from "../errors.js";
import { type ChainCertificate, type EndorsementKind, normalizeSerial } from "./certs.js";
import { type SignedObject, signedBy } from "./signature.js";

const OID_KEY_USAGE = "2.5.29.15";

export interface ParsedCrl extends SignedObject {
  der: Uint8Array;
  /** DER of the issuer Name, as in a certificate's subject. */
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Serial numbers, normalized like ChainCertificate.serialNumber. */
  revokedSerials: Uint8Array[];
}

function bad(message: string, cause?: unknown): never {
  throw new CrlError(message, cause === undefined ? undefined : { cause });
}

/**
 * One DER CRL, read with a strict DER walker (attestation/der.ts) rather than a schema parser:
 * every field must be where RFC 5280 puts it and nothing may follow, so no revoked entry can be
 * skipped unnoticed.
 */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const r = new DerReader(der, (m) => bad(`crl: malformed DER (${m.replace(/^der: /, "")})`));
  const top = r.children(r.whole(0x30));
  if (top.length !== 3 || top[0]!.tag !== 0x30 || top[1]!.tag !== 0x30 || top[2]!.tag !== 0x03)
    bad("crl: malformed DER (not a CertificateList)");
  const [tbsTlv, algTlv, sigTlv] = top as [Tlv, Tlv, Tlv];
  const fields = r.children(tbsTlv);
  let i = 0;
  const next = (): Tlv | undefined => fields[i];
  if (next()?.tag === 0x02) {
    const v = r.content(fields[i++]!);
    if (v.length !== 1 || v[0] !== 1) bad("crl: unsupported version");
  }
  const innerAlg = fields[i++];
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (
    innerAlg?.tag !== 0x30 ||
    issuer?.tag !== 0x30 ||
    (thisUpdate?.tag !== 0x17 && thisUpdate?.tag !== 0x18)
  )
    bad("crl: malformed DER (TBSCertList)");
  let nextUpdate: Date | undefined;
  if (next()?.tag === 0x17 || next()?.tag === 0x18) nextUpdate = r.time(fields[i++]!);
  const revokedSerials: Uint8Array[] = [];
  if (next()?.tag === 0x30) {
    for (const entry of r.children(fields[i++]!)) {
      if (entry.tag !== 0x30) bad("crl: malformed DER (revoked entry)");
      const parts = r.children(entry);
      const [serial, date, exts] = parts;
      if (
        parts.length < 2 ||
        parts.length > 3 ||
        serial!.tag !== 0x02 ||
        (date!.tag !== 0x17 && date!.tag !== 0x18)
      )
        bad("crl: malformed DER (revoked entry)");
      r.time(date!);
      if (exts !== undefined && anyCritical(r, exts)) bad("crl: unsupported critical entry extension");
      const content = r.content(serial!);
      if (content.length === 0) bad("crl: malformed DER (serial)");
      revokedSerials.push(normalizeSerial(content));
    }
  }
  if (next()?.tag === 0xa0) {
    const wrapper = r.children(fields[i++]!);
    if (wrapper.length !== 1) bad("crl: malformed DER (extensions)");
    if (anyCritical(r, wrapper[0]!)) bad("crl: unsupported critical extension");
  }
  if (i !== fields.length) bad("crl: malformed DER (unexpected field)");
  if (!bytesEqual(r.raw(innerAlg), r.raw(algTlv))) bad("crl: inner and outer signature algorithms differ");
  let alg: AlgorithmIdentifier;
  try {
    alg = AsnConvert.parse(r.raw(algTlv), AlgorithmIdentifier);
  } catch (e) {
    bad("crl: malformed signature algorithm", e);
  }
  const bits = r.content(sigTlv);
  if (bits.length < 2 || bits[0] !== 0) bad("crl: malformed signature");
  return {
    der,
    tbs: r.raw(tbsTlv),
    signatureAlgorithmOid: alg.algorithm,
    signatureAlgorithmParams: alg.parameters ? new Uint8Array(alg.parameters) : undefined,
    signature: bits.subarray(1),
    issuer: r.raw(issuer),
    thisUpdate: r.time(thisUpdate),
    nextUpdate,
    revokedSerials,
  };
}

/** Whether an Extensions SEQUENCE holds a critical extension (each: OID, [BOOLEAN], OCTET STRING). */
function anyCritical(r: DerReader, list: Tlv): boolean {
  if (list.tag !== 0x30) bad("crl: malformed DER (extensions)");
  let critical = false;
  for (const ext of r.children(list)) {
    if (ext.tag !== 0x30) bad("crl: malformed DER (extension)");
    const parts = r.children(ext);
    const last = parts[parts.length - 1];
    if (parts[0]?.tag !== 0x06 || last?.tag !== 0x04 || parts.length < 2 || parts.length > 3)
      bad("crl: malformed DER (extension)");
    if (parts.length === 3) {
      const flag = r.content(parts[1]!);
      if (parts[1]!.tag !== 0x01 || flag.length !== 1) bad("crl: malformed DER (extension)");
      if (flag[0] !== 0) critical = true;
    }
  }
  return critical;
}

const PEM_CRL_RE = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g;

/** Every CRL in `input`: one DER CRL, or one or more PEM `X509 CRL` blocks. */
export function crlsFromInput(input: Uint8Array | string): Uint8Array[] {
  let text: string | undefined = typeof input === "string" ? input : undefined;
  if (text === undefined) {
    const b = input as Uint8Array;
    let i = 0;
    while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
    if (b[i] !== 0x2d) return [b];
    text = new TextDecoder().decode(b);
  }
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_CRL_RE)) {
    let bin: string;
    try {
      bin = atob(m[1]!.replace(/\s+/g, ""));
    } catch (e) {
      bad("crl: malformed PEM", e);
    }
    out.push(Uint8Array.from(bin, (ch) => ch.charCodeAt(0)));
  }
  if (out.length === 0) bad("crl: no PEM X509 CRL found");
  return out;
}

function mayIssueCrls(issuer: ChainCertificate): boolean {
  const ext = issuer.extensions.get(OID_KEY_USAGE);
  if (ext === undefined) return true;
  let usage: KeyUsage;
  try {
    usage = AsnConvert.parse(ext, KeyUsage);
  } catch (e) {
    bad("crl: issuer key usage is malformed", e);
  }
  return (usage.toNumber() & KeyUsageFlags.cRLSign) !== 0;
}

export interface RevocationChain {
  ark: ChainCertificate;
  ask: ChainCertificate;
  leaf: ChainCertificate;
  kind: EndorsementKind;
}

/**
 * Checks the chain's ASK/ASVK and VCEK/VLEK against the CRLs at time `at`; returns what was
 * checked (for the result's detail). Throws CrlError for an unusable CRL, RevokedError for a
 * listed certificate.
 */
export async function checkRevocation(
  chain: RevocationChain,
  crls: readonly (Uint8Array | string)[],
  at: Date,
): Promise<string> {
  if (crls.length === 0) return "no CRL given";
  const parsed = crls.flatMap(crlsFromInput).map(parseCrl);
  const askName = chain.kind === "VCEK" ? "ASK" : "ASVK";
  const roles = [
    { issuer: chain.ark, subject: chain.ask, name: askName },
    { issuer: chain.ask, subject: chain.leaf, name: chain.kind },
  ];
  const checked = new Set<string>();
  for (const crl of parsed) {
    for (const role of roles) {
      if (!bytesEqual(crl.issuer, role.issuer.subject)) continue;
      if (!mayIssueCrls(role.issuer)) bad("crl: its issuer may not sign CRLs");
      if (!(await signedBy(crl, role.issuer.spki, "crl"))) bad("crl: signature does not verify");
      if (crl.nextUpdate !== undefined && at.getTime() > crl.nextUpdate.getTime())
        bad("crl: out of date at the verification time");
      if (crl.revokedSerials.some((s) => bytesEqual(s, role.subject.serialNumber)))
        throw new RevokedError(`certificate: ${role.name} revoked`);
      checked.add(role.name);
    }
  }
  if (checked.size === 0) bad("crl: none was issued by this chain's ARK or ASK");
  return `checked: ${roles
    .map((r) => r.name)
    .filter((n) => checked.has(n))
    .join(", ")}`;
}
