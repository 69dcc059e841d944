/**
 * vCPU signatures (CPUID Fn0000_0001 EAX) that QEMU puts in RDX at reset, by QEMU CPU model
 * name, and the family/model/stepping encoding (AMD CPUID specification #25481).
 */
import { MeasurementError } from "./errors.js";

const MAX_FAMILY = 0xf + 0xff;

export function cpuSignature(family: number, model: number, stepping: number): number {
  for (const [v, max] of [
    [family, MAX_FAMILY],
    [model, 0xff],
    [stepping, 0xf],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max)
      throw new MeasurementError("measure: vCPU family/model/stepping out of range");
  }
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family > 0xf ? family - 0xf : 0;
  return (
    (extFamily << 20) | (((model >> 4) & 0xf) << 16) | (baseFamily << 8) | ((model & 0xf) << 4) | stepping
  );
}

const EPYC = cpuSignature(23, 1, 2);
const ROME = cpuSignature(23, 49, 0);
const MILAN = cpuSignature(25, 1, 1);
const GENOA = cpuSignature(25, 17, 0);
const TURIN = cpuSignature(26, 0, 0);

/** `--vcpu-type` names (QEMU's builtin x86 CPU models) → signature. */
export const VCPU_TYPE_SIGNATURES: Readonly<Record<string, number>> = Object.freeze({
  EPYC,
  "EPYC-v1": EPYC,
  "EPYC-v2": EPYC,
  "EPYC-v3": EPYC,
  "EPYC-v4": EPYC,
  "EPYC-IBPB": EPYC,
  "EPYC-Rome": ROME,
  "EPYC-Rome-v1": ROME,
  "EPYC-Rome-v2": ROME,
  "EPYC-Rome-v3": ROME,
  "EPYC-Milan": MILAN,
  "EPYC-Milan-v1": MILAN,
  "EPYC-Milan-v2": MILAN,
  "EPYC-Genoa": GENOA,
  "EPYC-Genoa-v1": GENOA,
  "EPYC-Turin": TURIN,
});

export interface VcpuSignatureOptions {
  vcpuType?: string | undefined;
  vcpuSig?: number | undefined;
  vcpuFamily?: number | undefined;
  vcpuModel?: number | undefined;
  vcpuStepping?: number | undefined;
}

/**
 * The signature named by any of `--vcpu-type`, `--vcpu-sig` or `--vcpu-family/model/stepping`;
 * undefined when none is given. Several ways may be given only if they agree.
 */
export function resolveVcpuSignature(o: VcpuSignatureOptions): number | undefined {
  const found: number[] = [];
  if (o.vcpuType !== undefined) {
    if (!Object.hasOwn(VCPU_TYPE_SIGNATURES, o.vcpuType))
      throw new MeasurementError("measure: unknown vCPU type");
    found.push(VCPU_TYPE_SIGNATURES[o.vcpuType]!);
  }
  if (o.vcpuSig !== undefined) {
    if (!Number.isInteger(o.vcpuSig) || o.vcpuSig < 0 || o.vcpuSig > 0xffff_ffff) {
      throw new MeasurementError("measure: vCPU signature out of range");
    }
    found.push(o.vcpuSig);
  }
  const fms = [o.vcpuFamily, o.vcpuModel, o.vcpuStepping];
  if (fms.some((v) => v !== undefined)) {
    if (fms.some((v) => v === undefined)) {
      throw new MeasurementError("measure: vCPU family, model and stepping must be given together");
    }
    found.push(cpuSignature(o.vcpuFamily!, o.vcpuModel!, o.vcpuStepping!));
  }
  if (found.some((s) => s !== found[0]))
    throw new MeasurementError("measure: conflicting vCPU signature options");
  return found[0];
}
