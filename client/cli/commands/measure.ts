/**
 * `cleanroom measure`: recomputes the SEV-SNP launch measurement of a measured direct boot
 * (option names as operators know them from sev-snp-measure), or the PCRs of a Nitro EIF, so a
 * partner pins a number it derived itself from the published inputs.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { toHex } from "../../../attestation/bytes.js";
import { UsageError } from "../../../attestation/errors.js";
import { computeEifPcrs } from "../../../attestation/measure/eif.js";
import { computeSnpMeasurement, type SnpMeasureOptions } from "../../../attestation/measure/snp.js";
import type { VmmType } from "../../../attestation/measure/vmsa.js";
import { run } from "../options.js";

interface MeasureFlags {
  mode: string;
  ovmf?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  vcpus?: string;
  vcpuType?: string;
  vcpuSig?: string;
  vcpuFamily?: string;
  vcpuModel?: string;
  vcpuStepping?: string;
  vmmType: string;
  guestFeatures: string;
  snpOvmfHash?: string;
  eif?: string;
  json?: boolean;
}

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${what} must be a non-negative integer`);
  return n;
}

function snpOptions(f: MeasureFlags): SnpMeasureOptions {
  if (f.mode !== "snp" && f.mode !== "snp:ovmf-hash")
    throw new UsageError("--mode must be snp or snp:ovmf-hash");
  if (!["QEMU", "ec2", "gce"].includes(f.vmmType))
    throw new UsageError("--vmm-type must be QEMU, ec2 or gce");
  if (!/^(0x)?[0-9a-fA-F]+$/.test(f.guestFeatures)) throw new UsageError("--guest-features must be hex");
  const read = (p: string | undefined) => (p === undefined ? undefined : new Uint8Array(readFileSync(p)));
  const opts: SnpMeasureOptions = {
    mode: f.mode,
    vcpus: int(f.vcpus ?? "1", "--vcpus")!,
    vmmType: f.vmmType as VmmType,
    guestFeatures: BigInt(f.guestFeatures.startsWith("0x") ? f.guestFeatures : `0x${f.guestFeatures}`),
    vcpuType: f.vcpuType,
    vcpuSig: f.vcpuSig === undefined ? undefined : Number(f.vcpuSig),
    vcpuFamily: int(f.vcpuFamily, "--vcpu-family"),
    vcpuModel: int(f.vcpuModel, "--vcpu-model"),
    vcpuStepping: int(f.vcpuStepping, "--vcpu-stepping"),
  };
  const ovmf = read(f.ovmf);
  const kernel = read(f.kernel);
  const initrd = read(f.initrd);
  if (ovmf) opts.ovmf = ovmf;
  if (kernel) opts.kernel = kernel;
  if (initrd) opts.initrd = initrd;
  if (f.append !== undefined) opts.append = f.append;
  if (f.snpOvmfHash) opts.ovmfHash = f.snpOvmfHash;
  return opts;
}

async function runMeasure(f: MeasureFlags): Promise<void> {
  if (f.eif) {
    const pcrs = await computeEifPcrs(new Uint8Array(readFileSync(f.eif)));
    const out = Object.fromEntries(Object.entries(pcrs).map(([k, v]) => [k, toHex(v as Uint8Array)]));
    process.stdout.write(
      f.json
        ? `${JSON.stringify(out)}\n`
        : Object.entries(out)
            .map(([k, v]) => `${k} ${v}\n`)
            .join(""),
    );
    return;
  }
  const digest = toHex(await computeSnpMeasurement(snpOptions(f)));
  process.stdout.write(f.json ? `${JSON.stringify({ measurement: digest })}\n` : `${digest}\n`);
}

export function registerMeasureCommand(program: Command): void {
  program
    .command("measure")
    .description("compute the SEV-SNP launch measurement (measured direct boot) or a Nitro EIF's PCRs")
    .option("--mode <mode>", "snp | snp:ovmf-hash", "snp")
    .option("--ovmf <file>", "OVMF firmware (AmdSev build with the SNP kernel-hashes section)")
    .option("--kernel <file>", "kernel image")
    .option("--initrd <file>", "initrd image")
    .option("--append <cmdline>", "kernel command line")
    .option("--vcpus <n>", "number of vCPUs", "1")
    .option("--vcpu-type <name>", "QEMU vCPU model, e.g. EPYC-v4")
    .option("--vcpu-sig <n>", "vCPU signature (CPUID fn1 EAX), e.g. 0x800f12")
    .option("--vcpu-family <n>", "vCPU family")
    .option("--vcpu-model <n>", "vCPU model")
    .option("--vcpu-stepping <n>", "vCPU stepping")
    .option("--vmm-type <type>", "QEMU | ec2 | gce", "QEMU")
    .option("--guest-features <hex>", "SEV features of each VMSA", "0x1")
    .option("--snp-ovmf-hash <hex>", "precomputed OVMF hash (with --mode snp)")
    .option("--eif <file>", "compute PCR0/1/2(/8) of a Nitro enclave image file instead")
    .option("--json", "print JSON")
    .action((f: MeasureFlags) =>
      run(async () => {
        await runMeasure(f);
        return 0;
      }),
    );
}
