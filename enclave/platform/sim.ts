/**
 * The simulated platform as an evidence provider: same wire formats as the hardware, signed by
 * a locally generated root that verifiers trust only when told to. With `dir`, the platform is
 * loaded from (or created into) a directory made by `cleanroom sim init`, so verifiers can be
 * pointed at its sim-roots.pem; without it, a fresh platform lives for this process only.
 */
import type { Platform } from "../../attestation/result.js";
import { simNitroEvidence } from "../../attestation/sim/nitro.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { simSnpEvidence } from "../../attestation/sim/snp.js";
import { loadOrCreateSimPlatform } from "../../attestation/sim/store-node.js";
import type { EvidenceProvider } from "./provider.js";

export async function createSimProvider(
  opts: { dir?: string; platform?: Platform; sim?: SimPlatform } = {},
): Promise<EvidenceProvider> {
  const sim = opts.sim ?? (opts.dir ? await loadOrCreateSimPlatform(opts.dir) : await createSimPlatform());
  const platform = opts.platform ?? "sev-snp";
  return {
    platform,
    simulated: true,
    simulatedRoots: [new Uint8Array(sim.amd.ark.rawData), new Uint8Array(sim.nitro.root.rawData)],
    getEvidence: (reportData, nonce) =>
      platform === "sev-snp"
        ? simSnpEvidence(sim.amd, { reportData, measurement: sim.measurement })
        : simNitroEvidence(sim.nitro, { userData: reportData, nonce }),
  };
}
