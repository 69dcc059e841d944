/**
 * Expected SEV-SNP launch measurement of an OVMF guest with optional measured direct boot,
 * recomputed from published inputs (the algorithm of AMD's SNP ABI LAUNCH_UPDATE as
 * sev-snp-measure reproduces it for QEMU, EC2 and GCE). Option names follow that tool.
 */
import { MeasurementError } from "./errors.js";
import { LaunchDigest, LD_SIZE, PageType } from "./gctx.js";
import {
  apResetEip,
  checkSections,
  type MetadataSection,
  type Ovmf,
  PAGE_SIZE,
  parseOvmf,
  SectionType,
  sevHashesTable,
} from "./ovmf.js";
import { pythonFromHex } from "./pyparse.js";
import {
  buildSevHashesPage,
  buildSevHashesTable,
  commandLineBytes,
  type DirectBootInputs,
} from "./sev-hashes.js";
import { resolveVcpuSignature, type VcpuSignatureOptions } from "./vcpu-types.js";
import { BSP_EIP, buildVmsaPage, type VmmType } from "./vmsa.js";

export interface SnpMeasureOptions extends VcpuSignatureOptions {
  /** `snp`: full launch digest; `snp:ovmf-hash`: digest of the firmware pages only. */
  mode: "snp" | "snp:ovmf-hash";
  /** The firmware image; also needed with `ovmfHash`, for its metadata and reset vector. */
  ovmf?: Uint8Array;
  /**
   * `--snp-ovmf-hash`: precomputed firmware digest to start from instead of hashing `ovmf`: 48
   * bytes, or hex read as Python's `bytes.fromhex` reads it (no `0x`; whitespace between pairs).
   */
  ovmfHash?: string | Uint8Array;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  /**
   * The kernel command line. A string must be well-formed Unicode (no lone surrogates); bytes
   * must be valid UTF-8 and are measured as given. sev-snp-measure refuses anything else.
   */
  append?: string | Uint8Array;
  vcpus: number;
  vmmType?: VmmType;
  /** SEV_FEATURES of every VMSA; upstream's default is 0x1 (SNPActive). Pin it. */
  guestFeatures?: bigint;
}

const VMM_TYPES: readonly VmmType[] = ["QEMU", "ec2", "gce"];
/** A bound on the loop, far above any SNP guest's vCPU count. */
const MAX_VCPUS = 8192;
const PAGE_MASK = PAGE_SIZE - 1;

interface Plan {
  ovmf: Ovmf;
  apEip: number;
  seed: Uint8Array | undefined;
  boot: DirectBootInputs | undefined;
  vcpus: number;
  vcpuSig: number;
  vmmType: VmmType;
  guestFeatures: bigint;
}

/** Refusals of options and firmware structure happen here, before any hashing. */
function checkOptions(o: SnpMeasureOptions): Plan {
  if (o.mode !== "snp") throw new MeasurementError("measure: unsupported mode");
  if (o.ovmf === undefined) throw new MeasurementError("measure: firmware image required");
  if (o.kernel === undefined && (o.initrd !== undefined || o.append !== undefined)) {
    throw new MeasurementError("measure: initrd or append given without kernel");
  }
  if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > MAX_VCPUS) {
    throw new MeasurementError("measure: vcpus out of range");
  }
  const vmmType = o.vmmType ?? "QEMU";
  if (!VMM_TYPES.includes(vmmType)) throw new MeasurementError("measure: unknown VMM type");
  const guestFeatures = o.guestFeatures ?? 0x1n;
  if (typeof guestFeatures !== "bigint" || guestFeatures < 0n || guestFeatures >= 1n << 64n) {
    throw new MeasurementError("measure: guest features out of range");
  }
  // Only QEMU puts the signature in the VMSA; EC2 and GCE use a fixed value.
  const vcpuSig = resolveVcpuSignature(o);
  if (vcpuSig === undefined && vmmType === "QEMU")
    throw new MeasurementError("measure: vCPU type or signature required");
  let seed: Uint8Array | undefined;
  if (o.ovmfHash !== undefined) {
    seed = typeof o.ovmfHash === "string" ? pythonFromHex(o.ovmfHash) : o.ovmfHash;
    if (seed === undefined || seed.length !== LD_SIZE) {
      throw new MeasurementError("measure: firmware hash must be 48 bytes of hex");
    }
  }
  // Refused here, before any hashing, when it is not valid Unicode / UTF-8.
  const append = o.append === undefined ? undefined : commandLineBytes(o.append);
  const boot = o.kernel === undefined ? undefined : { kernel: o.kernel, initrd: o.initrd, append };
  const ovmf = parseOvmf(o.ovmf);
  checkSections(ovmf.sections);
  if (boot !== undefined) {
    const hashes = ovmf.sections.filter((s) => s.type === SectionType.SnpKernelHashes);
    if (hashes.length === 0)
      throw new MeasurementError("ovmf: kernel given but firmware has no kernel hashes section");
    if (hashes.some((s) => s.size !== PAGE_SIZE))
      throw new MeasurementError("ovmf: kernel hashes section is not one page");
    if (sevHashesTable(ovmf) === undefined) throw new MeasurementError("ovmf: no SEV hashes table entry");
  }
  const apEip = apResetEip(ovmf);
  if (o.vcpus > 1 && apEip === 0)
    throw new MeasurementError("ovmf: no AP reset address for more than one vCPU");
  return { ovmf, apEip, seed, boot, vcpus: o.vcpus, vcpuSig: vcpuSig ?? 0, vmmType, guestFeatures };
}

async function hashesPage(ovmf: Ovmf, boot: DirectBootInputs): Promise<Uint8Array> {
  // checkOptions made sure the table entry exists.
  const offset = sevHashesTable(ovmf)!.gpa & PAGE_MASK;
  return buildSevHashesPage(await buildSevHashesTable(boot), offset);
}

async function measureSection(ld: LaunchDigest, p: Plan, s: MetadataSection): Promise<void> {
  switch (s.type) {
    case SectionType.SnpSecMem:
      // GCE does not pre-validate this memory as measured zero pages.
      return ld.updateUnmeasuredPages(
        p.vmmType === "gce" ? PageType.Unmeasured : PageType.Zero,
        s.gpa,
        s.size,
      );
    case SectionType.SnpSecrets:
      return ld.updateUnmeasuredPages(PageType.Secrets, s.gpa, PAGE_SIZE);
    case SectionType.Cpuid:
      // EC2 inserts the CPUID page after every other metadata page.
      if (p.vmmType === "ec2") return;
      return ld.updateUnmeasuredPages(PageType.Cpuid, s.gpa, PAGE_SIZE);
    case SectionType.SvsmCaa:
      return ld.updateUnmeasuredPages(PageType.Zero, s.gpa, s.size);
    case SectionType.SnpKernelHashes:
      if (p.boot === undefined) return ld.updateUnmeasuredPages(PageType.Zero, s.gpa, s.size);
      return ld.updateNormalPages(s.gpa, await hashesPage(p.ovmf, p.boot));
  }
}

async function measureVmsas(ld: LaunchDigest, p: Plan): Promise<void> {
  const params = { vmmType: p.vmmType, vcpuSig: p.vcpuSig, guestFeatures: p.guestFeatures };
  await ld.updateVmsaPage(buildVmsaPage({ ...params, eip: BSP_EIP }));
  const ap = p.vcpus > 1 ? buildVmsaPage({ ...params, eip: p.apEip }) : undefined;
  for (let i = 1; i < p.vcpus; i++) await ld.updateVmsaPage(ap!);
}

async function firmwareDigest(ovmf: Ovmf): Promise<LaunchDigest> {
  const ld = new LaunchDigest();
  await ld.updateNormalPages(ovmf.gpa, ovmf.data);
  return ld;
}

/** The 48-byte launch MEASUREMENT (or, in mode `snp:ovmf-hash`, the firmware-only digest). */
export async function computeSnpMeasurement(opts: SnpMeasureOptions): Promise<Uint8Array> {
  if (opts.mode === "snp:ovmf-hash") {
    if (opts.ovmf === undefined) throw new MeasurementError("measure: firmware image required");
    if (
      opts.ovmfHash !== undefined ||
      opts.kernel !== undefined ||
      opts.initrd !== undefined ||
      opts.append !== undefined
    ) {
      throw new MeasurementError("measure: mode snp:ovmf-hash takes only a firmware image");
    }
    return (await firmwareDigest(parseOvmf(opts.ovmf))).digest;
  }
  const p = checkOptions(opts);
  const sections = p.ovmf.sections;
  const ld = p.seed === undefined ? await firmwareDigest(p.ovmf) : new LaunchDigest(p.seed);
  for (const s of sections) await measureSection(ld, p, s);
  if (p.vmmType === "ec2") {
    for (const s of sections)
      if (s.type === SectionType.Cpuid) await ld.updateUnmeasuredPages(PageType.Cpuid, s.gpa, PAGE_SIZE);
  }
  await measureVmsas(ld, p);
  return ld.digest;
}
