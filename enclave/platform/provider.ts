/**
 * Where evidence comes from: the SEV-SNP configfs-tsm interface, the Nitro Secure Module, or
 * the simulated platform. The enclave builds the 64-byte report data with
 * attestation/binding.ts and asks its provider for evidence over it; nothing else differs.
 */
import type { Evidence } from "../../attestation/evidence.js";
import type { Platform } from "../../attestation/result.js";

export interface EvidenceProvider {
  readonly platform: Platform;
  /** True for the simulated platform; its evidence verifies only where its root is trusted. */
  readonly simulated: boolean;
  /**
   * The simulated platform only: the roots (DER) its evidence chains to, which the enclave trusts
   * when it verifies a restored audit log's instances. Hardware roots are pinned in attestation/.
   */
  readonly simulatedRoots?: readonly Uint8Array[];
  /**
   * Evidence whose SEV-SNP REPORT_DATA or Nitro user_data is `reportData` (64 bytes); Nitro
   * also carries `nonce` in its own field.
   */
  getEvidence(reportData: Uint8Array, nonce: Uint8Array): Promise<Evidence>;
}
