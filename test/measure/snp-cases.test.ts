import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { MeasurementError } from "../../attestation/measure/errors.js";
import { computeSnpMeasurement, type SnpMeasureOptions } from "../../attestation/measure/snp.js";
import { type Case, file, loadCases } from "./cases.js";

/** Every way the case names its vCPU is passed, so the agreement check is exercised too. */
function caseOptions(c: Case): SnpMeasureOptions {
  if (c.mode === "snp:ovmf-hash") return { mode: c.mode, ovmf: file(c.ovmf), vcpus: 1 };
  return {
    mode: c.mode as "snp",
    ovmf: file(c.ovmf),
    ...(c.kernel != null && { kernel: file(c.kernel) }),
    ...(c.initrd != null && { initrd: file(c.initrd) }),
    ...(c.append != null && { append: c.append }),
    ...(c.snp_ovmf_hash !== undefined && { ovmfHash: c.snp_ovmf_hash }),
    vcpus: c.vcpus ?? 1,
    vmmType: c.vmm_type ?? "QEMU",
    guestFeatures: BigInt(c.guest_features ?? "0x1"),
    ...(c.vcpu_sig != null && { vcpuSig: Number(c.vcpu_sig) }),
    ...(c.vcpu_type !== undefined && { vcpuType: c.vcpu_type }),
    ...(c.vcpu_family !== undefined && {
      vcpuFamily: c.vcpu_family,
      vcpuModel: c.vcpu_model,
      vcpuStepping: c.vcpu_stepping,
    }),
  };
}

const cases = loadCases("cases.json");
// extra-cases.json holds the tool's other modes (sev, seves, snp:svsm), which the product does not
// measure: each must be refused as an unsupported mode, never computed as if it were SNP.
const extra = loadCases("extra-cases.json");

describe("SEV-SNP launch measurement: cases.json", () => {
  it("has the cases the README announces", () => {
    expect(cases).toHaveLength(28);
    expect(cases.filter((c) => c.expected_error !== null)).toHaveLength(2);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const run = computeSnpMeasurement(caseOptions(c));
    if (c.expected_error !== null) {
      await expect(run).rejects.toBeInstanceOf(MeasurementError);
      await expect(run).rejects.toMatchObject({ code: "ERR_MEASUREMENT" });
    } else {
      expect(toHex(await run)).toBe(c.expected);
    }
  });

  it.each(extra.map((c) => [c.name, c] as const))("extra (out of scope, refused): %s", async (_name, c) => {
    expect(["sev", "seves", "snp:svsm"]).toContain(c.mode);
    await expect(computeSnpMeasurement(caseOptions(c))).rejects.toMatchObject({ code: "ERR_MEASUREMENT" });
  });

  it("runs the whole table in one pass, each case to its digest or its refusal", async () => {
    const t0 = performance.now();
    for (const c of cases) {
      const run = computeSnpMeasurement(caseOptions(c));
      if (c.expected_error !== null)
        await expect(run, c.name).rejects.toMatchObject({ code: "ERR_MEASUREMENT" });
      else expect(toHex(await run), c.name).toBe(c.expected);
    }
    const ms = performance.now() - t0;
    console.log(`snp-measure: ${cases.length} cases in ${ms.toFixed(0)} ms`);
  });
});
