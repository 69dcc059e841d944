import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, sha384, toHex } from "../../attestation/bytes.js";
import { isCleanroomError } from "../../attestation/errors.js";
import { MeasurementError } from "../../attestation/measure/errors.js";
import { PageType, pageInfo } from "../../attestation/measure/gctx.js";
import { guidFromBytes, guidToBytes } from "../../attestation/measure/guid.js";
import { apResetEip, parseOvmf, SectionType, sevHashesTable } from "../../attestation/measure/ovmf.js";
import { buildSevHashesPage, buildSevHashesTable } from "../../attestation/measure/sev-hashes.js";
import { computeSnpMeasurement, type SnpMeasureOptions } from "../../attestation/measure/snp.js";
import {
  cpuSignature,
  resolveVcpuSignature,
  VCPU_TYPE_SIGNATURES,
} from "../../attestation/measure/vcpu-types.js";
import { BSP_EIP, buildVmsaPage, type VmmType } from "../../attestation/measure/vmsa.js";

const DIR = new URL("../../../shared/vectors/snp-measure/", import.meta.url);
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(new URL(rel, DIR)));
const amdSev = read("fixtures/ovmf_AmdSev_suffix.bin");
const kernel = read("fixtures/dummy-kernel.bin");
const initrd = read("fixtures/dummy-initrd.bin");

interface Intermediate {
  first_page_info_hex: string;
  sev_hashes_table_gpa: string;
  ap_reset_eip: string;
  vmsa_bsp_sha384: string;
  vmsa_ap_sha384: string;
  vmsa_bsp_nonzero_runs: [string, string][];
  padded_hashes_table_hex: string;
  hashes_page_sha384: string;
}
const intermediates = JSON.parse(readFileSync(new URL("intermediates.json", DIR), "utf8")) as Record<
  string,
  Intermediate
>;
interface Case {
  name: string;
  kernel: string | null;
  initrd: string | null;
  append: string | null;
  vmm_type: VmmType;
  guest_features: string;
  vcpu_sig: string | null;
}
const cases = (JSON.parse(readFileSync(new URL("cases.json", DIR), "utf8")) as { cases: Case[] }).cases;

function nonzeroRuns(page: Uint8Array): [string, string][] {
  const runs: [string, string][] = [];
  for (let i = 0; i < page.length; i++) {
    if (page[i] === 0) continue;
    let j = i;
    while (j < page.length && page[j] !== 0) j++;
    runs.push([`0x${i.toString(16)}`, toHex(page.subarray(i, j))]);
    i = j;
  }
  return runs;
}

describe("intermediate values (intermediates.json)", () => {
  const ovmf = parseOvmf(amdSev);
  it.each(Object.entries(intermediates))("%s", async (name, im) => {
    const c = cases.find((x) => x.name === name)!;
    expect(ovmf.gpa).toBe(0xfffff000);
    expect(apResetEip(ovmf)).toBe(Number(im.ap_reset_eip));
    expect(sevHashesTable(ovmf)?.gpa).toBe(Number(im.sev_hashes_table_gpa));
    const first = pageInfo(new Uint8Array(48), await sha384(amdSev), PageType.Normal, ovmf.gpa);
    expect(toHex(first)).toBe(im.first_page_info_hex);

    const params = {
      vmmType: c.vmm_type,
      vcpuSig: Number(c.vcpu_sig ?? 0),
      guestFeatures: BigInt(c.guest_features),
    };
    const bsp = buildVmsaPage({ ...params, eip: BSP_EIP });
    expect(nonzeroRuns(bsp)).toEqual(im.vmsa_bsp_nonzero_runs);
    expect(toHex(await sha384(bsp))).toBe(im.vmsa_bsp_sha384);
    expect(toHex(await sha384(buildVmsaPage({ ...params, eip: apResetEip(ovmf) })))).toBe(im.vmsa_ap_sha384);

    const table = await buildSevHashesTable({
      kernel: read(c.kernel!),
      initrd: c.initrd === null ? undefined : read(c.initrd),
      append: c.append ?? undefined,
    });
    expect(toHex(table)).toBe(im.padded_hashes_table_hex);
    expect(toHex(await sha384(buildSevHashesPage(table, Number(im.sev_hashes_table_gpa) & 0xfff)))).toBe(
      im.hashes_page_sha384,
    );
  });

  it("lists the AmdSev build's metadata as the README describes", () => {
    expect(ovmf.sections.map((s) => [s.type, s.gpa, s.size])).toEqual([
      [SectionType.SnpSecMem, 0x800000, 0x9000],
      [SectionType.SnpSecMem, 0x80a000, 0x3000],
      [SectionType.SnpSecrets, 0x80d000, 0x1000],
      [SectionType.Cpuid, 0x80e000, 0x1000],
      [SectionType.SvsmCaa, 0x80f000, 0x1000],
      [SectionType.SnpKernelHashes, 0x810000, 0x1000],
      [SectionType.SnpSecMem, 0x811000, 0xf000],
    ]);
  });
});

describe("vCPU signatures", () => {
  it("encodes family/model/stepping and names QEMU models", () => {
    expect(cpuSignature(25, 17, 1)).toBe(0xa10f11);
    expect(cpuSignature(6, 0x55, 4)).toBe(0x50654); // family below 0xF: no extended family
    expect(VCPU_TYPE_SIGNATURES["EPYC-v4"]).toBe(0x800f12);
    expect(VCPU_TYPE_SIGNATURES["EPYC-Rome"]).toBe(0x830f10);
    expect(VCPU_TYPE_SIGNATURES["EPYC-Milan"]).toBe(0xa00f11);
    expect(VCPU_TYPE_SIGNATURES["EPYC-Genoa"]).toBe(0xa10f10);
    expect(VCPU_TYPE_SIGNATURES["EPYC-Turin"]).toBe(0xb00f00);
  });

  it("accepts several ways only when they agree", () => {
    expect(resolveVcpuSignature({})).toBeUndefined();
    expect(resolveVcpuSignature({ vcpuSig: 0 })).toBe(0);
    expect(resolveVcpuSignature({ vcpuType: "EPYC-Milan", vcpuSig: 0xa00f11 })).toBe(0xa00f11);
    for (const bad of [
      { vcpuType: "EPYC-Milan", vcpuSig: 0xa10f10 },
      { vcpuType: "Pentium" },
      { vcpuType: "toString" },
      { vcpuFamily: 25, vcpuModel: 1 },
      { vcpuFamily: 25, vcpuModel: 256, vcpuStepping: 0 },
      { vcpuSig: -1 },
      { vcpuSig: 1.5 },
    ]) {
      expect(() => resolveVcpuSignature(bad)).toThrow(MeasurementError);
    }
  });
});

describe("refusals", () => {
  const base: SnpMeasureOptions = { mode: "snp", ovmf: amdSev, vcpus: 2, vcpuType: "EPYC-v4" };
  const refused = async (o: SnpMeasureOptions): Promise<void> => {
    await expect(computeSnpMeasurement(o)).rejects.toBeInstanceOf(MeasurementError);
  };

  it("accepts the base options", async () => {
    expect(await computeSnpMeasurement(base)).toHaveLength(48);
  });

  it("refuses wrong option mixes and values", async () => {
    await refused({ ...base, ovmf: undefined });
    await refused({ ...base, initrd });
    await refused({ ...base, append: "quiet" });
    await refused({ ...base, vcpus: 0 });
    await refused({ ...base, vcpus: 1.5 });
    await refused({ ...base, vcpuType: undefined });
    await refused({ ...base, vmmType: "kvm" as VmmType });
    await refused({ ...base, guestFeatures: -1n });
    await refused({ ...base, guestFeatures: 1n << 64n });
    await refused({ ...base, ovmfHash: "00" });
    await refused({ ...base, ovmfHash: "zz".repeat(48) });
    await refused({ ...base, mode: "sev" as "snp" });
    await refused({ mode: "snp:ovmf-hash", ovmf: amdSev, kernel, vcpus: 1 });
    await refused({ mode: "snp:ovmf-hash", vcpus: 1 });
  });

  it("refuses firmware it cannot measure", async () => {
    await refused({ ...base, ovmf: amdSev.subarray(0, 4000) });
    await refused({ ...base, ovmf: new Uint8Array(0) });
    // No footer table: no reset block, so not even one vCPU can be measured.
    await refused({ ...base, ovmf: new Uint8Array(4096), vcpus: 1 });
    const badSig = amdSev.slice();
    badSig[0xaac] = 0x42;
    await refused({ ...base, ovmf: badSig });
    const badType = amdSev.slice();
    badType[0xaac + 16 + 8] = 0x7f; // first descriptor's type
    await refused({ ...base, ovmf: badType });
    const badHashesSize = amdSev.slice();
    new DataView(badHashesSize.buffer).setUint32(0xaac + 16 + 5 * 12 + 4, 0x2000, true);
    await refused({ ...base, ovmf: badHashesSize, kernel });
  });

  it("needs a vCPU signature only under QEMU", async () => {
    const gce = await computeSnpMeasurement({ ...base, vcpuType: undefined, vmmType: "gce" });
    expect(toHex(gce)).toBe(
      toHex(await computeSnpMeasurement({ ...base, vcpuType: "EPYC-Turin", vmmType: "gce" })),
    );
  });
});

describe("properties", () => {
  it("GUIDs round-trip in mixed-endian form", () => {
    expect(toHex(guidToBytes("96b582de-1fb2-45f7-baea-a366c55a082d"))).toBe(
      "de82b596b21ff745baeaa366c55a082d",
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        expect(guidToBytes(guidFromBytes(b))).toEqual(b);
      }),
    );
  });

  it("every input is part of the digest", async () => {
    const base: SnpMeasureOptions = {
      mode: "snp",
      ovmf: amdSev,
      kernel,
      initrd,
      append: "a",
      vcpus: 2,
      vcpuSig: 1,
    };
    const variants: SnpMeasureOptions[] = [
      { ...base, kernel: kernel.subarray(1) },
      { ...base, initrd: undefined },
      { ...base, append: "b" },
      { ...base, vcpus: 3 },
      { ...base, vcpuSig: 2 },
      { ...base, guestFeatures: 0x21n },
      { ...base, vmmType: "ec2" },
      { ...base, ovmfHash: "11".repeat(48) },
    ];
    const seen = new Set([toHex(await computeSnpMeasurement(base))]);
    for (const v of variants) seen.add(toHex(await computeSnpMeasurement(v)));
    expect(seen.size).toBe(variants.length + 1);
  });

  it("a corrupted firmware tail raises only MeasurementError", async () => {
    const cheap = (b: Uint8Array): boolean => {
      try {
        return parseOvmf(b).sections.reduce((n, s) => n + s.size, 0) <= 0x100000;
      } catch {
        return true;
      }
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: 4095 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        async (flips) => {
          const b = amdSev.slice();
          // Bias towards the footer and metadata, where the structure lives.
          for (const [at, x] of flips) b[at < 2048 ? 0xa00 + (at % 0x600) : at]! ^= x;
          fc.pre(cheap(b)); // huge (valid-looking) zero ranges only cost time
          try {
            await computeSnpMeasurement({ mode: "snp", ovmf: b, kernel, vcpus: 2, vcpuSig: 0 });
          } catch (e) {
            expect(isCleanroomError(e) && e.code === "ERR_MEASUREMENT").toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads the seed as Python's bytes.fromhex: no 0x prefix, whitespace only between byte pairs", async () => {
    const h =
      "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74";
    const o: SnpMeasureOptions = { mode: "snp", ovmf: amdSev, vcpus: 1, vcpuSig: 0 };
    const want = await computeSnpMeasurement(o);
    expect(fromHex(h)).toEqual(
      await computeSnpMeasurement({ mode: "snp:ovmf-hash", ovmf: amdSev, vcpus: 1 }),
    );
    expect(await computeSnpMeasurement({ ...o, ovmfHash: h })).toEqual(want);
    expect(await computeSnpMeasurement({ ...o, ovmfHash: h.toUpperCase() })).toEqual(want);
    expect(await computeSnpMeasurement({ ...o, ovmfHash: ` ${h.match(/../g)!.join(" \t")}\n` })).toEqual(
      want,
    );
    expect(await computeSnpMeasurement({ ...o, ovmfHash: fromHex(h) })).toEqual(want);
    for (const bad of [
      `0x${h}`,
      `${h.slice(0, 1)} ${h.slice(1)}`,
      `${h}0`,
      h.slice(2),
      `${h}00`,
      `${h.slice(0, -1)}g`,
    ]) {
      await expect(computeSnpMeasurement({ ...o, ovmfHash: bad }), bad).rejects.toBeInstanceOf(
        MeasurementError,
      );
    }
  });
});

describe("firmware structure, as sev-snp-measure reads it", () => {
  const HEADER = 0xaac; // the AmdSev fixture's SEV metadata header ("ASEV", size, version, count)
  const o: SnpMeasureOptions = { mode: "snp", ovmf: amdSev, vcpus: 1, vcpuType: "EPYC-v4" };
  const withSize = (size: number): Uint8Array => {
    const b = amdSev.slice();
    new DataView(b.buffer).setUint32(HEADER + 4, size, true);
    return b;
  };

  it("a metadata header whose size does not hold its descriptors is refused", async () => {
    const count = new DataView(amdSev.buffer, amdSev.byteOffset).getUint32(HEADER + 12, true);
    expect(count).toBe(7);
    const exact = 16 + count * 12;
    // The header is part of the firmware's pages: start from the original firmware digest so
    // only the metadata is compared. Exactly enough room measures as the fixture does.
    const seeded = {
      ...o,
      ovmfHash: await computeSnpMeasurement({ mode: "snp:ovmf-hash", ovmf: amdSev, vcpus: 1 }),
    };
    const want = await computeSnpMeasurement(seeded);
    expect(await computeSnpMeasurement({ ...seeded, ovmf: withSize(exact) })).toEqual(want);
    for (const size of [exact - 1, 16, 0, 12]) {
      await expect(computeSnpMeasurement({ ...o, ovmf: withSize(size) }), String(size)).rejects.toMatchObject(
        {
          code: "ERR_MEASUREMENT",
          message: "ovmf: SEV metadata header too small for its descriptors",
        },
      );
      // sev-snp-measure parses the metadata for snp:ovmf-hash too, and fails the same way.
      await expect(
        computeSnpMeasurement({ mode: "snp:ovmf-hash", ovmf: withSize(size), vcpus: 1 }),
      ).rejects.toThrow(MeasurementError);
    }
    // A size past the end of the image is clamped to it, as Python slicing does.
    expect(await computeSnpMeasurement({ ...seeded, ovmf: withSize(0xffff_ffff) })).toEqual(want);
    const none = amdSev.slice();
    new DataView(none.buffer).setUint32(HEADER + 12, 0, true);
    new DataView(none.buffer).setUint32(HEADER + 4, 0, true);
    expect(parseOvmf(none).sections).toEqual([]);
  });

  it("an unknown section type fails the measurement but not the firmware digest (snp:ovmf-hash)", async () => {
    const badType = amdSev.slice();
    badType[HEADER + 16 + 8] = 0x7f;
    await expect(computeSnpMeasurement({ ...o, ovmf: badType })).rejects.toThrow(MeasurementError);
    expect(await computeSnpMeasurement({ mode: "snp:ovmf-hash", ovmf: badType, vcpus: 1 })).toHaveLength(48);
  });

  it("a footer that claims less than itself is no table: no digest, but a firmware hash", async () => {
    const b = amdSev.slice();
    new DataView(b.buffer).setUint16(b.length - 50, 17, true);
    expect(parseOvmf(b).table.size).toBe(0);
    await expect(computeSnpMeasurement({ ...o, ovmf: b })).rejects.toThrow(MeasurementError);
    expect(await computeSnpMeasurement({ mode: "snp:ovmf-hash", ovmf: b, vcpus: 1 })).toHaveLength(48);
  });
});

describe("the command line, strictly", () => {
  const o: SnpMeasureOptions = { mode: "snp", ovmf: amdSev, vcpus: 1, vcpuType: "EPYC-v4", kernel };
  it("UTF-8 bytes and the same text measure alike; invalid UTF-8 and lone surrogates are refused", async () => {
    const text = "console=ttyS0 café ✓";
    const want = await computeSnpMeasurement({ ...o, append: text });
    expect(await computeSnpMeasurement({ ...o, append: new TextEncoder().encode(text) })).toEqual(want);
    for (const bad of [
      new Uint8Array([0x61, 0xff, 0x62]),
      new Uint8Array([0xc3]),
      new Uint8Array([0xed, 0xa0, 0x80]), // an encoded surrogate
      new Uint8Array([0xc0, 0xaf]), // overlong
    ]) {
      await expect(computeSnpMeasurement({ ...o, append: bad })).rejects.toMatchObject({
        message: "measure: command line is not valid UTF-8",
      });
    }
    await expect(computeSnpMeasurement({ ...o, append: "a\ud800b" })).rejects.toMatchObject({
      message: "measure: command line is not valid Unicode",
    });
    // A real U+FFFD in valid text is just a character.
    expect(await computeSnpMeasurement({ ...o, append: "a\ufffdb" })).toHaveLength(48);
  });
});
