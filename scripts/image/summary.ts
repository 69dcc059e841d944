/**
 * What a build:image run leaves out, in words an operator acts on. A manifest without a SEV-SNP
 * launch measurement (no --ovmf) is still a valid build, but nobody can pin SNP evidence to it;
 * the build says so before it starts and again beside its output.
 */
import { PLATFORMS, type Platform } from "./cmdline.js";

export function leftOut(o: { platforms: readonly Platform[]; ovmf: boolean }): string[] {
  const out: string[] = [];
  if (o.platforms.includes("sev-snp") && !o.ovmf) {
    out.push(
      "no SEV-SNP launch measurement: --ovmf <AmdSev OVMF.fd> was not given, so manifest.json has " +
        "none and partners cannot pin SEV-SNP evidence to this build (the image and its command line " +
        "are still written); rebuild with --ovmf (and --vcpus, --vcpu-type, --vmm-type as deployed)",
    );
  }
  for (const p of PLATFORMS.filter((q) => !o.platforms.includes(q))) {
    out.push(
      p === "nitro"
        ? "no Nitro EIF and no PCRs (nitro not in --platforms)"
        : `no ${p} kernel command line (${p} not in --platforms)`,
    );
  }
  return out;
}
