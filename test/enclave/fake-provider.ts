/** A stand-in evidence provider: the enclave never verifies its own evidence, so any bytes do. */
import type { EvidenceProvider } from "../../enclave/platform/provider.js";

/** "Evidence" that is the report data followed by the nonce, so tests can check the binding. */
export function fakeProvider(): EvidenceProvider {
  return {
    platform: "sev-snp",
    simulated: true,
    getEvidence: async (reportData, nonce) => ({
      platform: "sev-snp",
      evidence: new Uint8Array([...reportData, ...nonce]),
    }),
  };
}
