/**
 * The evidence policy a restarted enclave verifies a restored log's instances with: built from
 * its own evidence, never from anything the host sends. An earlier instance is trusted when it ran
 * on the same platform with the same image (SEV-SNP launch measurement, or Nitro PCR0–2) and its
 * evidence chains to a pinned hardware root, or, on the simulated platform, to the simulated root
 * this enclave itself runs under. The shipped minimum TCB applies as for any verifier; the enclave
 * has no CRL to offer, so revocation is the parties' own check (verifyAuditLog with their policy).
 */
import { toHex } from "../attestation/bytes.js";
import type { Evidence, EvidencePolicy } from "../attestation/evidence.js";
import { isDebugDocument, parseNitro } from "../attestation/nitro/index.js";
import { parseReport } from "../attestation/snp/report.js";
import type { EvidenceProvider } from "./platform/provider.js";

export function selfPolicy(own: Evidence, provider: EvidenceProvider): EvidencePolicy {
  const roots = provider.simulated ? [...(provider.simulatedRoots ?? [])] : [];
  const policy: EvidencePolicy = roots.length ? { trustedSimRoots: roots } : {};
  if (own.platform === "sev-snp") {
    const report = parseReport(own.evidence);
    // A debug instance trusts debug evidence of its own image only: no weaker than itself.
    return {
      ...policy,
      measurements: [toHex(report.measurement)],
      ...(report.policyFlags.debug ? { allowDebug: true } : {}),
    };
  }
  const { document } = parseNitro(own.evidence);
  const pcrs: Record<number, string> = {};
  for (const i of [0, 1, 2]) {
    const pcr = document.pcrs.get(i);
    if (pcr) pcrs[i] = toHex(pcr);
  }
  return { ...policy, pcrs, ...(isDebugDocument(document) ? { allowDebug: true } : {}) };
}
