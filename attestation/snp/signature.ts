/**
 * AMD's certificate and CRL signatures: RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1.
 * Shared by the chain (verify.ts) and the CRL check (crl.ts); anything else is refused.
 */
import { id_mgf1, id_RSASSA_PSS, id_sha384, RsaSaPssParams } from "@peculiar/asn1-rsa";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { CertificateError } from "../errors.js";

/** What a signature check needs of a signed ASN.1 object (certificate or CRL). */
export interface SignedObject {
  tbs: Uint8Array;
  signatureAlgorithmOid: string;
  signatureAlgorithmParams: Uint8Array | undefined;
  signature: Uint8Array;
}

export const PSS_SALT = 48;

export function checkPssAlgorithm(obj: SignedObject, what = "certificate"): void {
  const wrong = (): never => {
    throw new CertificateError(`${what}: signature algorithm is not RSASSA-PSS SHA-384 salt 48`);
  };
  if (obj.signatureAlgorithmOid !== id_RSASSA_PSS || !obj.signatureAlgorithmParams) wrong();
  let p: RsaSaPssParams;
  let mgfHash: AlgorithmIdentifier;
  try {
    p = AsnConvert.parse(obj.signatureAlgorithmParams!, RsaSaPssParams);
    if (p.maskGenAlgorithm.algorithm !== id_mgf1 || !p.maskGenAlgorithm.parameters) wrong();
    mgfHash = AsnConvert.parse(p.maskGenAlgorithm.parameters!, AlgorithmIdentifier);
  } catch (e) {
    if (e instanceof CertificateError) throw e;
    throw new CertificateError(`${what}: malformed RSASSA-PSS parameters`, { cause: e });
  }
  if (p.hashAlgorithm.algorithm !== id_sha384 || mgfHash.algorithm !== id_sha384) wrong();
  if (p.saltLength !== PSS_SALT || p.trailerField !== 1) wrong();
}

/** True when the RSA key in `issuerSpki` signed `obj` (RSASSA-PSS, SHA-384, salt 48). */
export async function signedBy(
  obj: SignedObject,
  issuerSpki: Uint8Array,
  what = "certificate",
): Promise<boolean> {
  checkPssAlgorithm(obj, what);
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "spki",
      issuerSpki as BufferSource,
      { name: "RSA-PSS", hash: "SHA-384" },
      false,
      ["verify"],
    );
  } catch (e) {
    throw new CertificateError(`${what}: issuer key is not RSA`, { cause: e });
  }
  return crypto.subtle.verify(
    { name: "RSA-PSS", saltLength: PSS_SALT },
    key,
    obj.signature as BufferSource,
    obj.tbs as BufferSource,
  );
}
