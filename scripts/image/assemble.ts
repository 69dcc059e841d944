/**
 * From in-memory inputs to the release artifacts and their manifest: the initramfs (newc cpio,
 * uncompressed so its bytes do not depend on a compressor's version), one kernel command line per
 * platform, the Nitro EIF, and the expected measurements. Pure apart from hashing, so the same
 * inputs always give byte-identical outputs (the reproducibility test runs this twice).
 */
import { createHash } from "node:crypto";
import { toHex } from "../../attestation/bytes.js";
import { computeEifPcrs } from "../../attestation/measure/eif.js";
import { buildEif } from "../../attestation/measure/eif-build.js";
import { computeSnpMeasurement } from "../../attestation/measure/snp.js";
import type { VmmType } from "../../attestation/measure/vmsa.js";
import { kernelCmdline, type Platform } from "./cmdline.js";
import { writeCpio } from "./cpio.js";
import { type InitramfsInputs, initramfsEntries } from "./initramfs.js";

export const MANIFEST_SCHEMA = "cleanroom-image-manifest/1";

export interface SnpLaunchOptions {
  ovmf: Uint8Array;
  vcpus: number;
  vcpuType?: string;
  vmmType: VmmType;
  guestFeatures: bigint;
}

export interface AssembleInputs {
  kernel: Uint8Array;
  kernelVersion: string;
  initramfs: InitramfsInputs;
  platforms: readonly Platform[];
  /** Address the enclave listens on in the guest, and eth0's address (not used for nitro). */
  listen: string;
  ip?: string;
  sourceDateEpoch: number;
  /** Measured direct boot under SEV-SNP; without it the manifest carries no SNP measurement. */
  snp?: SnpLaunchOptions;
  /** Provenance of every outside input (pins, versions), copied into the manifest. */
  provenance: Record<string, unknown>;
  toolVersion: string;
}

export interface Artifact {
  name: string;
  data: Uint8Array;
}

export interface AssembleResult {
  artifacts: Artifact[];
  manifest: Record<string, unknown>;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Path → SHA-256, in byte order of the paths so the manifest does not depend on input order. */
function digests(files: readonly { path: string; data: Uint8Array }[]): Record<string, string> {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return Object.fromEntries(sorted.map((f) => [f.path, sha256(f.data)]));
}

function cmdlineFor(i: AssembleInputs, platform: Platform): string {
  return kernelCmdline({
    platform,
    listen: i.listen,
    ...(platform !== "nitro" && i.ip !== undefined ? { ip: i.ip } : {}),
  });
}

/** The EIF metadata section; its build time is SOURCE_DATE_EPOCH so the file is reproducible. */
function eifMetadata(i: AssembleInputs): Record<string, unknown> {
  return {
    ImageName: "cleanroom-enclave",
    ImageVersion: i.toolVersion,
    BuildMetadata: {
      BuildTime: new Date(i.sourceDateEpoch * 1000).toISOString(),
      BuildTool: "cleanroom build:image",
      BuildToolVersion: i.toolVersion,
      OperatingSystem: "Linux",
      KernelVersion: i.kernelVersion,
    },
    DockerInfo: {},
    CustomMetadata: null,
  };
}

export async function assembleImage(i: AssembleInputs): Promise<AssembleResult> {
  const initrd = writeCpio(initramfsEntries(i.initramfs), i.sourceDateEpoch);
  const artifacts: Artifact[] = [
    { name: "vmlinuz", data: i.kernel },
    { name: "initramfs.cpio", data: initrd },
  ];
  const images: Record<string, unknown> = {};
  for (const platform of i.platforms) {
    const cmdline = cmdlineFor(i, platform);
    artifacts.push({ name: `cmdline-${platform}.txt`, data: new TextEncoder().encode(cmdline) });
    const entry: Record<string, unknown> = {
      cmdline,
      cmdlineSha256: sha256(new TextEncoder().encode(cmdline)),
    };
    if (platform === "nitro") {
      const eif = buildEif({ kernel: i.kernel, cmdline, ramdisks: [initrd], metadata: eifMetadata(i) });
      const pcrs = await computeEifPcrs(eif);
      artifacts.push({ name: "cleanroom-nitro.eif", data: eif });
      entry.eif = { file: "cleanroom-nitro.eif", sha256: sha256(eif) };
      entry.pcrs = { PCR0: toHex(pcrs.PCR0), PCR1: toHex(pcrs.PCR1), PCR2: toHex(pcrs.PCR2) };
    } else if (i.snp !== undefined) {
      const s = i.snp;
      const measurement = await computeSnpMeasurement({
        mode: "snp",
        ovmf: s.ovmf,
        kernel: i.kernel,
        initrd,
        append: cmdline,
        vcpus: s.vcpus,
        vmmType: s.vmmType,
        guestFeatures: s.guestFeatures,
        ...(s.vcpuType !== undefined ? { vcpuType: s.vcpuType } : {}),
      });
      entry.sevSnp = {
        measurement: toHex(measurement),
        vcpus: s.vcpus,
        vcpuType: s.vcpuType ?? null,
        vmmType: s.vmmType,
        guestFeatures: `0x${s.guestFeatures.toString(16)}`,
      };
    }
    images[platform] = entry;
  }
  const manifest = {
    schema: MANIFEST_SCHEMA,
    toolVersion: i.toolVersion,
    sourceDateEpoch: i.sourceDateEpoch,
    kernelVersion: i.kernelVersion,
    inputs: {
      ...i.provenance,
      ovmf: i.snp === undefined ? null : { sha256: sha256(i.snp.ovmf), size: i.snp.ovmf.length },
      bundle: digests(i.initramfs.enclave),
      init: sha256(i.initramfs.init),
      node: sha256(i.initramfs.node),
      nativePackages: digests(i.initramfs.nativePackages),
      libraries: digests(i.initramfs.libraries),
      modules: digests(i.initramfs.modules),
    },
    artifacts: Object.fromEntries(
      artifacts.map((a) => [a.name, { sha256: sha256(a.data), size: a.data.length }]),
    ),
    images,
  };
  return { artifacts, manifest };
}
