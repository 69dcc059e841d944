/**
 * A simulated Nitro Secure Module: a root (EC P-384, ECDSA SHA-384, O=cleanroom-simulated)
 * and, per document, a short-lived leaf that signs a COSE_Sign1 attestation document in the
 * real NSM format (PCRs 0–15, user_data, nonce).
 */
import { sha384 } from "../bytes.js";
import type { Evidence } from "../evidence.js";
import { ES384_PROTECTED_HEADER, encodeCoseSign1, encodeSigStructure } from "../nitro/cose.js";
import { encodeAttestationPayload } from "../nitro/document.js";
import { x509 } from "../x509.js";
import { SIMULATED_ORG } from "./names.js";

const EC = { name: "ECDSA", namedCurve: "P-384" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-384" } as const;
const HOUR = 3_600_000;

export interface SimNitroRoot {
  root: x509.X509Certificate;
  rootKey: CryptoKey;
  /** PCR0..2 of the simulated image; never all zero, so the document is not "debug". */
  pcrs: Map<number, Uint8Array>;
}

async function generate(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function simImagePcrs(label = "cleanroom simulated enclave"): Promise<Map<number, Uint8Array>> {
  const pcrs = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) {
    pcrs.set(i, i <= 2 ? await sha384(new TextEncoder().encode(`${label} PCR${i}`)) : new Uint8Array(48));
  }
  return pcrs;
}

export async function createSimNitroRoot(
  notBefore = new Date(Date.now() - 86_400_000),
): Promise<SimNitroRoot> {
  const keys = await generate();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `C=US, O=${SIMULATED_ORG}, OU=Nitro, CN=simulated.nitro-enclaves`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 30 * 365 * 24 * HOUR),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { root, rootKey: keys.privateKey, pcrs: await simImagePcrs() };
}

export interface SimNitroInput {
  userData: Uint8Array;
  nonce: Uint8Array;
  /** Document time; default now. */
  at?: Date;
  /** Override PCRs (tests of the debug refusal use all-zero PCR0..2). */
  pcrs?: Map<number, Uint8Array>;
}

/** A fresh 3-hour leaf signed by the root, then the signed document, as the NSM issues them. */
export async function signSimNitroDocument(sim: SimNitroRoot, input: SimNitroInput): Promise<Uint8Array> {
  const at = input.at ?? new Date();
  const leafKeys = await generate();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: Date.now().toString(16),
    subject: `C=US, O=${SIMULATED_ORG}, OU=Nitro, CN=i-simulated-enc.simulated.nitro-enclaves`,
    issuer: sim.root.subject,
    notBefore: new Date(at.getTime() - 60_000),
    notAfter: new Date(at.getTime() + 3 * HOUR),
    signingAlgorithm: SIGN,
    publicKey: leafKeys.publicKey,
    signingKey: sim.rootKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  const payload = encodeAttestationPayload({
    moduleId: "i-simulated-enc0000000000000000",
    digest: "SHA384",
    timestamp: at.getTime(),
    pcrs: input.pcrs ?? sim.pcrs,
    certificate: new Uint8Array(leaf.rawData),
    cabundle: [new Uint8Array(sim.root.rawData)],
    publicKey: null,
    userData: input.userData,
    nonce: input.nonce,
  });
  const toSign = encodeSigStructure(ES384_PROTECTED_HEADER, payload);
  const signature = new Uint8Array(
    await crypto.subtle.sign(SIGN, leafKeys.privateKey, toSign as BufferSource),
  );
  return encodeCoseSign1(ES384_PROTECTED_HEADER, payload, signature);
}

export async function simNitroEvidence(sim: SimNitroRoot, input: SimNitroInput): Promise<Evidence> {
  return { platform: "nitro", evidence: await signSimNitroDocument(sim, input) };
}
