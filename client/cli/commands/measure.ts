/**
 * `cleanroom measure`: recomputes the SEV-SNP launch measurement of a measured direct boot
 * (option names as operators know them from sev-snp-measure), or the PCRs of a Nitro EIF, so a
 * partner pins a number it derived itself from the published inputs. Every option is read as
 * sev-snp-measure reads it (docs/OPERATORS.md, "cleanroom measure input rules"): the same command
 * line gives the same digest or is refused.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { toHex } from "../../../attestation/bytes.js";
import { UsageError } from "../../../attestation/errors.js";
import { computeEifPcrs } from "../../../attestation/measure/eif.js";
import { pythonInt } from "../../../attestation/measure/pyparse.js";
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

/**
 * An integer option read as sev-snp-measure reads it: argparse `type=int` (base 10) or
 * `int(x, 0)` (attestation/measure/pyparse.ts has the rules), then our range.
 */
function integer(
  v: string | undefined,
  what: string,
  base: 10 | 0,
  min: bigint,
  max: bigint,
): bigint | undefined {
  if (v === undefined) return undefined;
  const n = pythonInt(v, base);
  if (n === undefined) {
    throw new UsageError(
      base === 10
        ? `${what} must be a decimal integer (read as Python int(x): no 0x, no fraction, no exponent)`
        : `${what} must be an integer as Python int(x, 0) reads it (decimal without leading zeros, 0x, 0o or 0b)`,
    );
  }
  if (n < min || n > max) throw new UsageError(`${what} must be ${min}..${max}`);
  return n;
}

const small = (n: bigint | undefined): number | undefined => (n === undefined ? undefined : Number(n));

/**
 * `--append`: Node has already replaced any invalid UTF-8 of the command line with U+FFFD, which
 * sev-snp-measure would refuse (Python cannot encode the undecodable bytes); a U+FFFD is refused
 * for that reason, as is a lone surrogate.
 */
function commandLine(v: string): string {
  if (v.includes("\uFFFD")) {
    throw new UsageError(
      "--append is not valid UTF-8 (or holds U+FFFD, which cannot be told apart from invalid bytes here)",
    );
  }
  if (/[\uD800-\uDFFF]/u.test(v)) throw new UsageError("--append is not valid Unicode");
  return v;
}

const U32 = 0xffff_ffffn;
const MAX_VCPUS = 8192n;

function snpOptions(f: MeasureFlags): SnpMeasureOptions {
  if (f.mode !== "snp" && f.mode !== "snp:ovmf-hash")
    throw new UsageError("--mode must be snp or snp:ovmf-hash");
  if (!["QEMU", "ec2", "gce"].includes(f.vmmType))
    throw new UsageError("--vmm-type must be QEMU, ec2 or gce");
  // Every number given is parsed (argparse does so before looking at the mode).
  const vcpus = small(integer(f.vcpus, "--vcpus", 10, 1n, MAX_VCPUS));
  const vcpuSig = small(integer(f.vcpuSig, "--vcpu-sig", 0, 0n, U32));
  const vcpuFamily = small(integer(f.vcpuFamily, "--vcpu-family", 10, 0n, U32));
  const vcpuModel = small(integer(f.vcpuModel, "--vcpu-model", 10, 0n, U32));
  const vcpuStepping = small(integer(f.vcpuStepping, "--vcpu-stepping", 10, 0n, U32));
  const guestFeatures = integer(f.guestFeatures, "--guest-features", 0, 0n, (1n << 64n) - 1n)!;
  if (f.mode === "snp" && vcpus === undefined) throw new UsageError("missing --vcpus N in mode snp");
  if (f.kernel === "") throw new UsageError("--kernel names no file");
  const read = (p: string | undefined) => (p === undefined ? undefined : new Uint8Array(readFileSync(p)));
  const opts: SnpMeasureOptions = {
    mode: f.mode,
    vcpus: vcpus ?? 1,
    vmmType: f.vmmType as VmmType,
    guestFeatures,
    vcpuType: f.vcpuType,
    vcpuSig,
    vcpuFamily,
    vcpuModel,
    vcpuStepping,
  };
  const ovmf = read(f.ovmf);
  const kernel = read(f.kernel);
  // As in sev-snp-measure, an empty --initrd or --append is the same as none.
  const initrd = f.initrd ? read(f.initrd) : undefined;
  if (ovmf) opts.ovmf = ovmf;
  if (kernel) opts.kernel = kernel;
  if (initrd) opts.initrd = initrd;
  if (f.append) opts.append = commandLine(f.append);
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
    .option("--vcpus <n>", "number of vCPUs (required with --mode snp; decimal)")
    .option("--vcpu-type <name>", "QEMU vCPU model, e.g. EPYC-v4")
    .option("--vcpu-sig <n>", "vCPU signature (CPUID fn1 EAX), e.g. 0x800f12 (Python int(x, 0))")
    .option("--vcpu-family <n>", "vCPU family (decimal)")
    .option("--vcpu-model <n>", "vCPU model (decimal)")
    .option("--vcpu-stepping <n>", "vCPU stepping (decimal)")
    .option("--vmm-type <type>", "QEMU | ec2 | gce", "QEMU")
    .option("--guest-features <n>", "SEV features of each VMSA (Python int(x, 0): 0x21 or 33)", "0x1")
    .option("--snp-ovmf-hash <hex>", "precomputed OVMF hash, 96 hex digits without 0x (with --mode snp)")
    .option("--eif <file>", "compute PCR0/1/2(/8) of a Nitro enclave image file instead")
    .option("--json", "print JSON")
    .action((f: MeasureFlags) =>
      run(async () => {
        await runMeasure(f);
        return 0;
      }, f.json),
    );
}
