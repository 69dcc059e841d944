/**
 * One simulated platform per test process, shared by every enclave a test starts: a restarted
 * enclave verifies the instances of a restored log under the simulated root it runs under, so
 * instances that follow each other must run under the same one (as `--sim-dir` gives a process).
 */
import { toHex } from "../../attestation/bytes.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import type { EvidenceProvider } from "../../enclave/platform/provider.js";
import { createSimProvider } from "../../enclave/platform/sim.js";

let shared: Promise<SimPlatform> | undefined;

export function testPlatform(): Promise<SimPlatform> {
  shared ??= createSimPlatform();
  return shared;
}

export async function simProvider(platform?: "sev-snp" | "nitro"): Promise<EvidenceProvider> {
  return createSimProvider({ sim: await testPlatform(), ...(platform ? { platform } : {}) });
}

/** What a party trusts for enclaves of the shared platform: its roots and its image. */
export async function testPolicy(): Promise<EvidencePolicy> {
  const p = await testPlatform();
  return {
    measurements: [toHex(p.measurement)],
    pcrs: Object.fromEntries([0, 1, 2].map((i) => [i, toHex(p.nitro.pcrs.get(i)!)])),
    trustedSimRoots: [new Uint8Array(p.amd.ark.rawData), new Uint8Array(p.nitro.root.rawData)],
  };
}
