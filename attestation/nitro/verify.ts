/**
 * Verify layer: the certificate chain from a pinned (or explicitly trusted) root through the
 * cabundle to the leaf `certificate`, then the COSE_Sign1 ES384 signature by the leaf key over
 * the Sig_structure built from the exact received bytes (NSM attestation_process.md §3.2.3).
 * Says nothing about whether the enclave is acceptable; that is policy.ts.
 */
import { bytesEqual, concatBytes, sha256, toHex } from "../bytes.js";
import {
  CertificateError,
  CleanroomError,
  SignatureError,
  SimulatedEvidenceError,
  UntrustedRootError,
} from "../errors.js";
import type { Check } from "../result.js";
import { SIMULATED_ORG } from "../sim/names.js";
import { x509 } from "../x509.js";
import { runCheck } from "./checks.js";
import { encodeSigStructure } from "./cose.js";
import type { NitroDocument } from "./document.js";
import type { ParsedNitro } from "./parse.js";
import { AWS_NITRO_ROOT_G1_DER } from "./roots.js";

export interface NitroVerifyOptions {
  /** Verification time; default now. Real documents expire ~3 h after their timestamp. */
  at?: Date;
  /** Extra trusted root certificates (DER), e.g. the simulated platform's; results via them are `simulated`. */
  trustedRoots?: readonly Uint8Array[];
}

export interface NitroVerified {
  /** The chain ends at a caller-supplied root rather than the pinned AWS root. */
  simulated: boolean;
}

const ES384 = { name: "ECDSA", namedCurve: "P-384" } as const;
const ECDSA_SHA384 = { name: "ECDSA", hash: "SHA-384" } as const;
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";
/** Critical extensions this verifier enforces; any other critical one fails (RFC 5280 §4.2). */
const UNDERSTOOD_CRITICAL = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE]);

/** Which root anchors the chain; throws when it is neither pinned nor trusted by the caller. */
function classifyRoot(rootDer: Uint8Array, trustedRoots: readonly Uint8Array[]): NitroVerified {
  if (bytesEqual(rootDer, AWS_NITRO_ROOT_G1_DER)) return { simulated: false };
  if (trustedRoots.some((r) => bytesEqual(rootDer, r))) return { simulated: true };
  let org: string[] = [];
  try {
    org = new x509.X509Certificate(rootDer as BufferSource).subjectName.getField("O");
  } catch {
    // An unparseable root is just as untrusted.
  }
  if (org.includes(SIMULATED_ORG)) {
    throw new SimulatedEvidenceError(
      "evidence is from a simulated platform; trust its root explicitly to accept it",
    );
  }
  throw new UntrustedRootError("chain: cabundle[0] is not the pinned AWS Nitro root or a trusted root");
}

function parseCertificate(der: Uint8Array): x509.X509Certificate {
  try {
    return new x509.X509Certificate(der as BufferSource);
  } catch (e) {
    throw new CertificateError("chain: certificate is not valid DER X.509", { cause: e });
  }
}

function isEs384Key(cert: x509.X509Certificate): boolean {
  const alg = cert.publicKey.algorithm as EcKeyAlgorithm;
  return alg.name === ES384.name && alg.namedCurve === ES384.namedCurve;
}

function signedWithEcdsaSha384(cert: x509.X509Certificate): boolean {
  const alg = cert.signatureAlgorithm;
  return alg.name === "ECDSA" && alg.hash.name === "SHA-384";
}

/** `chain` is root first, leaf last: each certificate is issued and signed by the one before. */
async function checkChainSignatures(chain: x509.X509Certificate[]): Promise<void> {
  for (let i = 1; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i - 1]!;
    // Names compared as DER, not as strings: RDN order differs between certificates (zonal).
    if (
      !bytesEqual(
        new Uint8Array(cert.issuerName.toArrayBuffer()),
        new Uint8Array(issuer.subjectName.toArrayBuffer()),
      )
    ) {
      throw new SignatureError("chain: certificate issuer is not the subject of the next certificate up");
    }
    if (!signedWithEcdsaSha384(cert) || !isEs384Key(issuer)) {
      throw new SignatureError("chain: certificate not signed with ECDSA P-384 / SHA-384");
    }
    let ok = false;
    try {
      ok = await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
    } catch {
      ok = false;
    }
    if (!ok) throw new SignatureError("chain: certificate signature invalid");
  }
}

/** CA flags, path length and key usage, as §3.2.3.2/3 ask; time-independent. */
function checkChainConstraints(chain: x509.X509Certificate[]): void {
  const leafIndex = chain.length - 1;
  chain.forEach((cert, i) => {
    for (const ext of cert.extensions) {
      if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.type)) {
        throw new CertificateError("chain: certificate has an unsupported critical extension");
      }
    }
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const usages = cert.getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
    if (i < leafIndex) {
      if (!bc?.ca || !bc.critical)
        throw new CertificateError("chain: CA certificate lacks critical basicConstraints CA");
      // CA certificates below this one, excluding the leaf.
      if (bc.pathLength !== undefined && bc.pathLength < leafIndex - 1 - i) {
        throw new CertificateError("chain: CA certificate path length exceeded");
      }
      if (!(usages & x509.KeyUsageFlags.keyCertSign))
        throw new CertificateError("chain: CA certificate lacks keyCertSign");
    } else {
      if (bc?.ca) throw new CertificateError("chain: leaf certificate is a CA");
      if (!(usages & x509.KeyUsageFlags.digitalSignature)) {
        throw new CertificateError("chain: leaf certificate lacks digitalSignature");
      }
      if (!isEs384Key(cert)) throw new CertificateError("chain: leaf key is not EC P-384");
    }
  });
}

function checkValidity(chain: x509.X509Certificate[], at: Date): void {
  const t = at.getTime();
  if (Number.isNaN(t)) throw new CertificateError("chain: verification time is not a valid date");
  for (const cert of chain) {
    if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) {
      throw new CertificateError("chain: certificate not valid at the verification time");
    }
  }
}

/** Malformed extension contents or keys surface as library errors; they are certificate errors here. */
async function asCertificateErrors<T>(step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof CleanroomError) throw e;
    throw new CertificateError("chain: certificate content not understood", { cause: e });
  }
}

interface VerifiedChain {
  certs: x509.X509Certificate[];
  leafKey: CryptoKey;
}

/**
 * Chains whose signatures and constraints verified, keyed by the digest of their exact DER
 * bytes. Documents from one enclave share a chain for hours, so warm verification costs one
 * ECDSA verification. Validity times and root trust are still checked on every call.
 */
const chainCache = new Map<string, VerifiedChain>();
const CHAIN_CACHE_MAX = 64;

async function chainKey(derChain: readonly Uint8Array[]): Promise<string> {
  // Length-prefixed so that different splits of the same bytes never collide.
  const parts = derChain.flatMap((der) => [new Uint8Array(new Uint32Array([der.length]).buffer), der]);
  return toHex(await sha256(concatBytes(...parts)));
}

/**
 * Checks the chain and the document signature; throws UntrustedRootError,
 * SimulatedEvidenceError, CertificateError or SignatureError. When `checks` is given, one entry
 * per step is appended, up to and including a failing one.
 */
export async function verifyNitroEvidence(
  evidence: ParsedNitro,
  options: NitroVerifyOptions = {},
  checks?: Check[],
): Promise<NitroVerified> {
  const doc: NitroDocument = evidence.document;
  const at = options.at ?? new Date();
  const derChain = [...doc.cabundle, doc.certificate];
  const verified = await runCheck(checks, "root pinned", () =>
    classifyRoot(doc.cabundle[0]!, options.trustedRoots ?? []),
  );
  const key = await chainKey(derChain);
  let chain = chainCache.get(key);
  if (chain) {
    checks?.push({ name: "chain signatures", ok: true }, { name: "certificate constraints", ok: true });
  } else {
    const certs = await runCheck(checks, "chain signatures", () =>
      asCertificateErrors(async () => {
        const parsed = derChain.map(parseCertificate);
        await checkChainSignatures(parsed);
        return parsed;
      }),
    );
    const leafKey = await runCheck(checks, "certificate constraints", () =>
      asCertificateErrors(() => {
        checkChainConstraints(certs);
        return certs[certs.length - 1]!.publicKey.export(ES384, ["verify"]);
      }),
    );
    chain = { certs, leafKey };
    if (chainCache.size >= CHAIN_CACHE_MAX) chainCache.delete(chainCache.keys().next().value!);
    chainCache.set(key, chain);
  }
  const { certs, leafKey } = chain;
  await runCheck(checks, "certificate validity", () => checkValidity(certs, at));
  await runCheck(checks, "document signature", async () => {
    const { protectedHeader, payload, signature } = evidence.cose;
    const toBeSigned = encodeSigStructure(protectedHeader, payload);
    // WebCrypto ECDSA takes r||s (IEEE P1363) directly, which is COSE's encoding.
    const ok = await crypto.subtle.verify(
      ECDSA_SHA384,
      leafKey,
      signature as BufferSource,
      toBeSigned as BufferSource,
    );
    if (!ok) throw new SignatureError("COSE_Sign1: document signature invalid");
  });
  return verified;
}
