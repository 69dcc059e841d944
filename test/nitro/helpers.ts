/** Shared by the Nitro tests: the real vectors on disk and a small self-made signing chain. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { ES384_PROTECTED_HEADER, encodeCoseSign1, encodeSigStructure } from "../../attestation/nitro/cose.js";
import type { NitroDocument } from "../../attestation/nitro/index.js";
import {
  decodeAttestationPayload,
  decodeCoseSign1,
  encodeAttestationPayload,
} from "../../attestation/nitro/index.js";
import { x509 } from "../../attestation/x509.js";

export const VECTORS = new URL("../../../shared/vectors/nitro/", import.meta.url);

export interface Vector {
  name: string;
  bytes: Uint8Array;
  /** From provenance.md: the "(NNN ms)" verification time and whether it says DEBUG mode. */
  provenanceTimestamp: number;
  provenanceDebug: boolean;
}

export const readVector = (rel: string): Uint8Array => new Uint8Array(readFileSync(new URL(rel, VECTORS)));

export const vectorDirs: string[] = readdirSync(VECTORS)
  .filter((d) => statSync(new URL(d, VECTORS)).isDirectory())
  .sort();

export const vectors: Vector[] = vectorDirs.map((name) => {
  const provenance = readFileSync(new URL(`${name}/provenance.md`, VECTORS), "utf8");
  const ts = /\((\d{13}) ms\)/.exec(provenance);
  if (!ts) throw new Error(`no timestamp in ${name}/provenance.md`);
  return {
    name,
    bytes: readVector(`${name}/attestation.cbor`),
    provenanceTimestamp: Number(ts[1]),
    provenanceDebug: /mode: DEBUG/.test(provenance),
  };
});

export const tampered: { name: string; bytes: Uint8Array }[] = vectorDirs.flatMap((dir) =>
  readdirSync(new URL(dir, VECTORS))
    .filter((f) => f.startsWith("attestation.tampered-") && f.endsWith(".cbor"))
    .map((f) => ({ name: `${dir}/${f}`, bytes: readVector(`${dir}/${f}`) })),
);

export const timestampOf = (bytes: Uint8Array): Date =>
  new Date(decodeAttestationPayload(decodeCoseSign1(bytes).payload).timestamp);

const EC = { name: "ECDSA", namedCurve: "P-384" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-384" } as const;

export interface TestChain {
  rootDer: Uint8Array;
  leafDer: Uint8Array;
  leafKey: CryptoKey;
}

/** A root → leaf chain shaped like NSM's (P-384, ecdsa-with-SHA384, critical CA constraints). */
export async function makeChain(
  org: string,
  notBefore: Date,
  notAfter: Date,
  extraLeafExtensions: x509.Extension[] = [],
): Promise<TestChain> {
  const rootKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const leafKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const rootName = `CN=test.nitro-enclaves, O=${org}, C=US`;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: rootName,
    notBefore: new Date(notBefore.getTime() - 86_400_000),
    notAfter: new Date(notAfter.getTime() + 86_400_000),
    signingAlgorithm: SIGN,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: `CN=i-0123456789abcdef0-enc0123456789abcdef.test, O=${org}, C=US`,
    issuer: root.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGN,
    publicKey: leafKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, false),
      ...extraLeafExtensions,
    ],
  });
  return {
    rootDer: new Uint8Array(root.rawData),
    leafDer: new Uint8Array(leaf.rawData),
    leafKey: leafKeys.privateKey,
  };
}

export function sampleDocument(chain: TestChain, timestamp: number): NitroDocument {
  const pcrs = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) pcrs.set(i, new Uint8Array(48).fill(i < 5 ? i + 1 : 0));
  return {
    moduleId: "i-0123456789abcdef0-enc0123456789abcdef",
    digest: "SHA384",
    timestamp,
    pcrs,
    certificate: chain.leafDer,
    cabundle: [chain.rootDer],
    publicKey: null,
    userData: new Uint8Array(64).fill(7),
    nonce: new Uint8Array(32).fill(9),
  };
}

/** Signs payload bytes as NSM does: ES384 over the Sig_structure, r||s, untagged COSE_Sign1. */
export async function signPayload(payload: Uint8Array, key: CryptoKey): Promise<Uint8Array> {
  const tbs = encodeSigStructure(ES384_PROTECTED_HEADER, payload);
  const sig = new Uint8Array(await crypto.subtle.sign(SIGN, key, tbs as BufferSource));
  return encodeCoseSign1(ES384_PROTECTED_HEADER, payload, sig);
}

export async function signDocument(doc: NitroDocument, key: CryptoKey): Promise<Uint8Array> {
  return signPayload(encodeAttestationPayload(doc), key);
}

/**
 * For tests of the envelope (format, chain, signature, time), not of image pinning: a policy
 * that says explicitly that it pins no image. Product code never does this outside development.
 */
export const ANY_IMAGE = { allowAnyImage: true } as const;

/** The policy an operator writes for a document they reviewed: its own PCR0, PCR1 and PCR2. */
export function ownImage(bytes: Uint8Array): { pcrs: Record<number, Uint8Array> } {
  const pcrs = decodeAttestationPayload(decodeCoseSign1(bytes).payload).pcrs;
  return { pcrs: { 0: pcrs.get(0)!, 1: pcrs.get(1)!, 2: pcrs.get(2)! } };
}
