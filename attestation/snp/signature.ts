/**
 * AMD's signatures: certificates and CRLs are RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48,
 * trailer 1 (anything else is refused); reports are ECDSA P-384 with SHA-384. Shared by the chain
 * (verify.ts) and the CRL check (crl.ts).
 *
 * Two interchangeable backends: node:crypto where the runtime has it (synchronous, several times
 * faster than WebCrypto for one-off checks, which hop through a thread pool), WebCrypto elsewhere
 * (a browser, a Node without `process.getBuiltinModule`; see native.ts).
 */
import type * as NodeCrypto from "node:crypto";
import { id_mgf1, id_RSASSA_PSS, id_sha384, RsaSaPssParams } from "@peculiar/asn1-rsa";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { CertificateError } from "../errors.js";
import { nodeCrypto } from "../native.js";

/** What a signature check needs of a signed ASN.1 object (certificate or CRL). */
export interface SignedObject {
  tbs: Uint8Array;
  signatureAlgorithmOid: string;
  signatureAlgorithmParams: Uint8Array | undefined;
  signature: Uint8Array;
}

export const PSS_SALT = 48;

/**
 * Parameter encodings that passed the check below, by their exact bytes: the check is a function
 * of those bytes alone, so the same bytes need not be parsed again. Bounded; only accepted
 * encodings go in.
 */
const acceptedPssParams = new Set<string>();
const ACCEPTED_PSS_LIMIT = 16;

export function checkPssAlgorithm(obj: SignedObject, what = "certificate"): void {
  const params = obj.signatureAlgorithmParams;
  const memo =
    obj.signatureAlgorithmOid === id_RSASSA_PSS && params && params.length <= 256
      ? String.fromCharCode(...params)
      : undefined;
  if (memo !== undefined && acceptedPssParams.has(memo)) return;
  parsePssAlgorithm(obj, what);
  if (memo !== undefined && acceptedPssParams.size < ACCEPTED_PSS_LIMIT) acceptedPssParams.add(memo);
}

function parsePssAlgorithm(obj: SignedObject, what: string): void {
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

/** A public key imported once, for any number of signature checks under it. */
export interface SignatureKey {
  /** True when `signature` over `data` verifies; false for any other outcome. */
  verify(signature: Uint8Array, data: Uint8Array): Promise<boolean>;
}

/** Imports public keys from SPKI DER; throws CertificateError for a key of another type. */
export interface SignatureBackend {
  /** An RSA key (rsaEncryption) for RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48. */
  rsaPss(spki: Uint8Array, what: string): Promise<SignatureKey>;
  /** An EC P-384 key for ECDSA with SHA-384; signatures are r ‖ s (IEEE P1363, as in a report). */
  ecdsaP384(spki: Uint8Array): Promise<SignatureKey>;
}

const notRsa = (what: string, cause?: unknown): CertificateError =>
  new CertificateError(`${what}: issuer key is not RSA`, cause === undefined ? undefined : { cause });
const notP384 = (cause?: unknown): CertificateError =>
  new CertificateError(
    "certificate: endorsement key is malformed",
    cause === undefined ? undefined : { cause },
  );

/** A WebCrypto verification key from SPKI; `refused` names a key of another type. */
async function webCryptoKey(
  spki: Uint8Array,
  importAs: RsaHashedImportParams | EcKeyImportParams,
  verifyAs: RsaPssParams | EcdsaParams,
  refused: (cause: unknown) => CertificateError,
): Promise<SignatureKey> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", spki as BufferSource, importAs, false, ["verify"]);
  } catch (e) {
    throw refused(e);
  }
  return {
    verify: (signature, data) =>
      crypto.subtle.verify(verifyAs, key, signature as BufferSource, data as BufferSource).catch(() => false),
  };
}

export const webCryptoBackend: SignatureBackend = {
  rsaPss: (spki, what) =>
    webCryptoKey(spki, { name: "RSA-PSS", hash: "SHA-384" }, { name: "RSA-PSS", saltLength: PSS_SALT }, (e) =>
      notRsa(what, e),
    ),
  ecdsaP384: (spki) =>
    webCryptoKey(spki, { name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }, notP384),
};

/**
 * The node:crypto backend. Calls go through the module object at call time (`c.verify`), so a
 * test can observe them. Key types are checked as WebCrypto's import does: an RSA-PSS-only SPKI
 * (id-RSASSA-PSS) or an EC key on another curve is refused.
 */
export function nodeCryptoBackend(c: typeof NodeCrypto): SignatureBackend {
  /** The key in `spki` when `accepts` it; `refused` names any other (or an unreadable one). */
  const publicKey = (
    spki: Uint8Array,
    accepts: (key: NodeCrypto.KeyObject) => boolean,
    refused: (cause?: unknown) => CertificateError,
  ): NodeCrypto.KeyObject => {
    let key: NodeCrypto.KeyObject;
    try {
      key = c.createPublicKey({ key: spki as NodeCrypto.PublicKeyInput["key"], format: "der", type: "spki" });
    } catch (e) {
      throw refused(e);
    }
    if (!accepts(key)) throw refused();
    return key;
  };
  const check = (key: NodeCrypto.VerifyKeyObjectInput, signature: Uint8Array, data: Uint8Array): boolean => {
    try {
      return c.verify("sha384", data, key, signature);
    } catch {
      return false;
    }
  };
  return {
    async rsaPss(spki, what) {
      const key = publicKey(
        spki,
        (k) => k.asymmetricKeyType === "rsa",
        (e) => notRsa(what, e),
      );
      const options = { key, padding: c.constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT };
      return { verify: async (signature, data) => check(options, signature, data) };
    },
    async ecdsaP384(spki) {
      const key = publicKey(
        spki,
        (k) => k.asymmetricKeyType === "ec" && k.asymmetricKeyDetails?.namedCurve === "secp384r1",
        notP384,
      );
      const options = { key, dsaEncoding: "ieee-p1363" as const };
      return { verify: async (signature, data) => check(options, signature, data) };
    },
  };
}

/** The backend this runtime uses. */
export const signatureBackend: SignatureBackend = nodeCrypto
  ? nodeCryptoBackend(nodeCrypto)
  : webCryptoBackend;

/** The RSA key of an issuer's SPKI, for `signedBy`. */
export function rsaPssKey(issuerSpki: Uint8Array, what = "certificate"): Promise<SignatureKey> {
  return signatureBackend.rsaPss(issuerSpki, what);
}

/** True when `issuer` (an RSA key or its SPKI) signed `obj` (RSASSA-PSS, SHA-384, salt 48). */
export async function signedBy(
  obj: SignedObject,
  issuer: Uint8Array | SignatureKey,
  what = "certificate",
): Promise<boolean> {
  checkPssAlgorithm(obj, what);
  const key = issuer instanceof Uint8Array ? await rsaPssKey(issuer, what) : issuer;
  return key.verify(obj.signature, obj.tbs);
}
