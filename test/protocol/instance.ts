/**
 * An enclave instance as the audit log sees one: an ES256 key, public keys (with an age
 * recipient) and an evidence source. `attest` signs simulated SEV-SNP evidence under `platform`
 * (its root and image), or, without one, returns placeholder bytes for tests that never verify.
 */
import type { EnclaveKeys } from "../../attestation/binding.js";
import type { Evidence } from "../../attestation/evidence.js";
import type { SimPlatform } from "../../attestation/sim/platform.js";
import { simSnpEvidence } from "../../attestation/sim/snp.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import type { Attest } from "../../protocol/audit/log.js";
import { makeParty } from "./fixtures.js";

export interface TestInstance {
  signingKey: CryptoKey;
  keys: EnclaveKeys;
  attest: Attest;
  publicJwk: JsonWebKey;
}

export async function makeInstance(
  platform?: SimPlatform,
  measurement: Uint8Array | undefined = platform?.measurement,
): Promise<TestInstance> {
  const k = await makeParty("enclave");
  const { kty, crv, x, y } = k.publicJwk;
  const keys: EnclaveKeys = {
    signingKey: { kty, crv, x, y },
    ageRecipient: await identityToRecipient(generateIdentity()),
  };
  const attest: Attest = async (reportData): Promise<Evidence> =>
    platform
      ? simSnpEvidence(platform.amd, { reportData, measurement: measurement! })
      : { platform: "sev-snp", evidence: new Uint8Array(1184) };
  return { signingKey: k.privateKey, keys, attest, publicJwk: keys.signingKey };
}
