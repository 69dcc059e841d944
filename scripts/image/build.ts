/**
 * `npm run build:image`: fetches the pinned inputs, bundles the enclave, assembles the sealed
 * initramfs, and writes the release artifacts with a manifest of every input's digest and the
 * expected measurements. Run with the same commit and pins, it writes the same bytes.
 *
 *   node dist/scripts/image/build.js [--out dist/image] [--cache DIR] [--ovmf OVMF.fd --vcpus N
 *     --vcpu-type EPYC-v4 --vmm-type QEMU --guest-features 0x1] [--platforms sim,sev-snp,nitro]
 */
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { VmmType } from "../../attestation/measure/vmsa.js";
import { assembleImage, type SnpLaunchOptions } from "./assemble.js";
import { type BundleFile, bundleEnclave, bundleInit, NATIVE_PACKAGES } from "./bundle.js";
import { DEFAULT_LISTEN, PLATFORMS, type Platform } from "./cmdline.js";
import { ImageBuildError } from "./errors.js";
import { extractDeb, extractTgz, fetchDebs, fetchNpmTarball } from "./fetch.js";
import { planModules } from "./modules.js";
import { KERNEL_PIN, LIB_FILES, LIB_PINS, MODULES, NODE_PIN } from "./pins.js";
import { leftOut } from "./summary.js";

interface Flags {
  out: string;
  cache: string;
  repo: string;
  platforms: string;
  listen: string;
  ip: string;
  ovmf?: string;
  vcpus: string;
  vcpuType?: string;
  vmmType: string;
  guestFeatures: string;
  sourceDateEpoch?: string;
}

/** Native package files the image needs (no docs, headers, sources or the musl variants). */
const SHIPPED = /\.(js|cjs|mjs|json|node|so)$/;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

function nativePackageFiles(repo: string): { files: BundleFile[]; versions: Record<string, string> } {
  const files: BundleFile[] = [];
  const versions: Record<string, string> = {};
  for (const pkg of NATIVE_PACKAGES) {
    const dir = join(repo, "node_modules", pkg);
    versions[pkg] = (
      JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }
    ).version;
    for (const f of walk(dir)) {
      const rel = relative(dir, f);
      if (!SHIPPED.test(rel) || /(^|\/)(doc|vendor|test|musl_[^/]*)\//.test(rel)) continue;
      files.push({ path: `${pkg}/${rel}`, data: new Uint8Array(readFileSync(f)) });
    }
  }
  return { files, versions };
}

/** SOURCE_DATE_EPOCH from the option, the environment, the last commit, or 0. */
function sourceDateEpoch(flag: string | undefined, repo: string): number {
  const text = flag ?? process.env.SOURCE_DATE_EPOCH;
  if (text !== undefined) {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new InvalidArgumentError("SOURCE_DATE_EPOCH must be a non-negative integer");
    return n;
  }
  try {
    return (
      Number(execFileSync("git", ["-C", repo, "log", "-1", "--format=%ct"], { encoding: "utf8" }).trim()) || 0
    );
  } catch {
    return 0;
  }
}

function snpOptions(f: Flags): SnpLaunchOptions | undefined {
  if (f.ovmf === undefined) return undefined;
  const vcpus = Number(f.vcpus);
  if (!Number.isSafeInteger(vcpus) || vcpus < 1)
    throw new InvalidArgumentError("--vcpus must be a positive integer");
  if (!["QEMU", "ec2", "gce"].includes(f.vmmType))
    throw new InvalidArgumentError("--vmm-type must be QEMU, ec2 or gce");
  if (!/^(0x)?[0-9a-fA-F]+$/.test(f.guestFeatures))
    throw new InvalidArgumentError("--guest-features must be hex");
  return {
    ovmf: new Uint8Array(readFileSync(f.ovmf)),
    vcpus,
    vmmType: f.vmmType as VmmType,
    guestFeatures: BigInt(f.guestFeatures.startsWith("0x") ? f.guestFeatures : `0x${f.guestFeatures}`),
    ...(f.vcpuType !== undefined ? { vcpuType: f.vcpuType } : {}),
  };
}

async function run(f: Flags): Promise<void> {
  const started = Date.now();
  const repo = realpathSync(f.repo);
  const platforms = f.platforms.split(",") as Platform[];
  if (!platforms.every((p) => PLATFORMS.includes(p)))
    throw new InvalidArgumentError("--platforms: sim, sev-snp, nitro");
  const epoch = sourceDateEpoch(f.sourceDateEpoch, repo);
  const snp = snpOptions(f);
  const missing = leftOut({ platforms, ovmf: snp !== undefined });
  for (const line of missing) process.stderr.write(`build:image: leaving out ${line}\n`);
  const work = mkdtempSync(join(tmpdir(), "cleanroom-image-"));
  try {
    const step = (what: string) =>
      process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}\n`);
    step("fetching pinned inputs");
    fetchNpmTarball(NODE_PIN, f.cache);
    const debs = fetchDebs([KERNEL_PIN, ...LIB_PINS], f.cache);
    extractTgz(join(f.cache, `${NODE_PIN.name}-${NODE_PIN.version}.tgz`), join(work, "node"), [
      "package/bin/node",
    ]);
    const kroot = join(work, "kernel");
    extractDeb(debs.get(KERNEL_PIN.package)!, kroot);
    for (const p of LIB_PINS) extractDeb(debs.get(p.package)!, join(work, "libs"));
    const kernelVersion = readdirSync(join(kroot, "lib/modules"))[0];
    if (kernelVersion === undefined) throw new ImageBuildError("build: kernel package has no modules");

    step("resolving kernel modules");
    const plan = planModules(kroot, kernelVersion, MODULES);
    step("bundling the enclave and the init");
    const [enclave, init] = await Promise.all([bundleEnclave(repo), bundleInit(repo)]);
    const natives = nativePackageFiles(repo);

    step("assembling");
    const { artifacts, manifest } = await assembleImage({
      kernel: new Uint8Array(readFileSync(join(kroot, "boot", `vmlinuz-${kernelVersion}`))),
      kernelVersion,
      initramfs: {
        node: new Uint8Array(readFileSync(join(work, "node/package/bin/node"))),
        // realpath: libstdc++.so.6 is a symlink in the package; the image holds the file under that name.
        libraries: LIB_FILES.map((p) => ({
          path: p,
          data: new Uint8Array(readFileSync(realpathSync(join(work, "libs", p)))),
        })),
        enclave,
        init,
        nativePackages: natives.files,
        modules: plan.files.map((p) => ({ path: p, data: new Uint8Array(readFileSync(join(kroot, p))) })),
        moduleGroups: plan.groups,
      },
      platforms,
      listen: f.listen,
      ...(f.ip === "" ? {} : { ip: f.ip }),
      sourceDateEpoch: epoch,
      ...(snp !== undefined ? { snp } : {}),
      toolVersion: (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string })
        .version,
      provenance: {
        nodeRuntime: NODE_PIN,
        kernelPackage: KERNEL_PIN,
        libraryPackages: LIB_PINS,
        nativePackageVersions: natives.versions,
        moduleGroups: plan.groups,
      },
    });
    mkdirSync(f.out, { recursive: true });
    for (const a of artifacts) writeFileSync(join(f.out, a.name), a.data);
    writeFileSync(join(f.out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    step(`wrote ${artifacts.length + 1} files to ${f.out}`);
    if (missing.length > 0) {
      process.stderr.write(
        `build:image: this build leaves out:\n${missing.map((l) => `  - ${l}\n`).join("")}`,
      );
    }
    process.stdout.write(`${JSON.stringify((manifest as { images: unknown }).images, null, 2)}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

new Command("build:image")
  .description("build the sealed confidential-VM image and its release manifest")
  .option("--out <dir>", "output directory", "dist/image")
  .option(
    "--cache <dir>",
    "download cache",
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "cleanroom-image"),
  )
  .option("--repo <dir>", "repository root", process.cwd())
  .option("--platforms <list>", "kernel command lines to produce", PLATFORMS.join(","))
  .option(
    "--listen <host:port>",
    "enclave listen address inside the guest (the Nitro image: this port, on vsock)",
    DEFAULT_LISTEN,
  )
  .option("--ip <cidr>", "eth0 address for sim/sev-snp ('' for none)", "10.0.2.15/24")
  .option("--ovmf <file>", "AmdSev OVMF build for the SEV-SNP measurement (measured direct boot)")
  .option("--vcpus <n>", "vCPUs of the SEV-SNP guest", "1")
  .option("--vcpu-type <name>", "QEMU vCPU model of the SEV-SNP guest, e.g. EPYC-v4")
  .option("--vmm-type <type>", "QEMU | ec2 | gce", "QEMU")
  .option("--guest-features <hex>", "SEV features of the VMSAs", "0x1")
  .option(
    "--source-date-epoch <seconds>",
    "timestamp for every archive entry (default: SOURCE_DATE_EPOCH, else the last commit)",
  )
  .action(async (f: Flags) => {
    try {
      await run(f);
    } catch (e) {
      process.stderr.write(`build:image: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    }
  })
  .parseAsync(process.argv);
