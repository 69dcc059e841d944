import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { registerMeasureCommand } from "../../client/cli/commands/measure.js";
import { registerSimCommand } from "../../client/cli/commands/sim.js";
import { type Case, DIR, loadCases } from "../measure/cases.js";
import { runCli } from "./run.js";

const MEASURE = fileURLToPath(DIR);
const EIF = fileURLToPath(new URL("../../../shared/vectors/eif/", import.meta.url));

/** The same case table the library tests use, spelled as sev-snp-measure command lines. */
function argsOf(c: Case): string[] {
  const a = ["measure", "--mode", c.mode, "--ovmf", join(MEASURE, c.ovmf)];
  if (c.kernel) a.push("--kernel", join(MEASURE, c.kernel));
  if (c.initrd) a.push("--initrd", join(MEASURE, c.initrd));
  if (c.append != null) a.push("--append", c.append);
  if (c.vcpus !== undefined) a.push("--vcpus", String(c.vcpus));
  if (c.vmm_type) a.push("--vmm-type", c.vmm_type);
  if (c.guest_features) a.push("--guest-features", c.guest_features);
  if (c.vcpu_type) a.push("--vcpu-type", c.vcpu_type);
  else if (c.vcpu_sig) a.push("--vcpu-sig", c.vcpu_sig);
  else if (c.vcpu_family !== undefined)
    a.push(
      "--vcpu-family",
      String(c.vcpu_family),
      "--vcpu-model",
      String(c.vcpu_model),
      "--vcpu-stepping",
      String(c.vcpu_stepping),
    );
  if (c.snp_ovmf_hash) a.push("--snp-ovmf-hash", c.snp_ovmf_hash);
  return a;
}

describe("cleanroom measure", () => {
  const cases = loadCases("cases.json");
  it("prints every expected digest and refuses every expected refusal with exit 1", async () => {
    for (const c of cases) {
      const r = await runCli(registerMeasureCommand, argsOf(c));
      if (c.expected_error) {
        expect(r.code, c.name).toBe(1);
        expect(r.stderr, c.name).toMatch(/^error ERR_MEASUREMENT: /);
      } else {
        expect(r.code, c.name).toBe(0);
        expect(r.stdout.trim(), c.name).toBe(c.expected);
      }
    }
  });

  it("computes the PCRs of an EIF", async () => {
    const expected = JSON.parse(readFileSync(join(EIF, "expected.json"), "utf8"));
    const r = await runCli(registerMeasureCommand, [
      "measure",
      "--eif",
      join(EIF, "one-ramdisk/image.eif"),
      "--json",
    ]);
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout);
    for (const k of ["PCR0", "PCR1", "PCR2"]) expect(got[k], k).toBe(expected["one-ramdisk"][k]);
  });

  it("exits 2 on a bad option", async () => {
    expect((await runCli(registerMeasureCommand, ["measure", "--mode", "sev"])).code).toBe(2);
    expect((await runCli(registerMeasureCommand, ["measure", "--vcpus", "-1"])).code).toBe(2);
  });
});

describe("cleanroom measure reads its input as sev-snp-measure does", () => {
  const cases = loadCases("cases.json");
  const byName = (n: string): Case => cases.find((c) => c.name === n)!;
  const ovmf = join(MEASURE, "fixtures/ovmf_AmdSev_suffix.bin");
  const kernel = join(MEASURE, "fixtures/dummy-kernel.bin");
  const measure = (args: string[]) => runCli(registerMeasureCommand, ["measure", ...args]);
  const digest = async (args: string[]): Promise<string> => {
    const r = await measure(args);
    expect(r.stderr, args.join(" ")).toBe("");
    expect(r.code, args.join(" ")).toBe(0);
    return r.stdout.trim();
  };
  const usage = async (args: string[], message: RegExp): Promise<void> => {
    const r = await measure(args);
    expect(r.code, args.join(" ")).toBe(2);
    expect(r.stderr, args.join(" ")).toMatch(/^error ERR_USAGE: /);
    expect(r.stderr).toMatch(message);
  };
  // snp_guest_feature_snp_only: QEMU, 1 vCPU, EPYC-v4, guest features 0x1, kernel + cmdline.
  const one = byName("snp_guest_feature_snp_only");
  const base = [
    ...argsOf(one)
      .slice(1)
      .filter((_, i, a) => !["--guest-features"].includes(a[i - 1]!) && a[i] !== "--guest-features"),
  ];

  it("the base command line gives the case's digest", async () => {
    expect(await digest(base)).toBe(one.expected);
  });

  it("--guest-features is int(x, 0): 65 is decimal (= 0x41), 0x21 = 33; leading zeros, floats refused", async () => {
    expect(await digest([...base, "--guest-features", "0x1"])).toBe(one.expected);
    expect(await digest([...base, "--guest-features", "1"])).toBe(one.expected);
    const d65 = await digest([...base, "--guest-features", "65"]);
    expect(d65).toBe(await digest([...base, "--guest-features", "0x41"]));
    expect(d65).not.toBe(await digest([...base, "--guest-features", "0x65"]));
    expect(await digest([...base, "--guest-features", "33"])).toBe(byName("snp_default").expected);
    expect(await digest([...base, "--guest-features", "0b100001"])).toBe(byName("snp_default").expected);
    expect(await digest([...base, "--guest-features", "0x2_1"])).toBe(byName("snp_default").expected);
    for (const bad of ["021", "1.0", "1e0", "0x", "21h", "-1", "0x10000000000000000", ""]) {
      await usage([...base, "--guest-features", bad], /--guest-features/);
    }
  });

  it("--vcpus is required in mode snp and read as int(x): 04, +4 and ' 4' are 4; 4.0, 0x4, 1e1 refused", async () => {
    await usage(
      base.filter((a, i) => a !== "--vcpus" && base[i - 1] !== "--vcpus"),
      /missing --vcpus/,
    );
    const four = byName("snp_with_multiple_vcpus_default");
    const args = (v: string) => {
      const a = argsOf(four).slice(1);
      a[a.indexOf("--vcpus") + 1] = v;
      return a;
    };
    for (const ok of ["4", "04", "+4", " 4 ", "\u0664"])
      expect(await digest(args(ok)), ok).toBe(four.expected);
    for (const bad of ["4.0", "0x4", "1e1", "4x", "", "0", "-1", "8193"]) await usage(args(bad), /--vcpus/);
    // snp:ovmf-hash needs no --vcpus, but one given must still parse.
    expect(await digest(["--mode", "snp:ovmf-hash", "--ovmf", ovmf])).toBe(
      byName("ovmf_hash_of_amdsev_suffix").expected,
    );
    await usage(["--mode", "snp:ovmf-hash", "--ovmf", ovmf, "--vcpus", "1.0"], /--vcpus/);
  });

  it("--vcpu-sig is int(x, 0) (no leading zeros); --vcpu-family/model/stepping are decimal", async () => {
    const sig = (v: string) => [
      ...base.filter((a, i) => a !== "--vcpu-type" && base[i - 1] !== "--vcpu-type"),
      "--vcpu-sig",
      v,
    ];
    for (const ok of ["0x800f12", "0X800F12", "8392466", "0x80_0f12", "0o40007422"]) {
      expect(await digest(sig(ok)), ok).toBe(one.expected);
    }
    for (const bad of ["0800f12", "800f12", "0x800f12.0", "08392466"]) await usage(sig(bad), /--vcpu-sig/);
    const fms = (f: string, m: string, st: string) => [
      ...base.filter((a, i) => a !== "--vcpu-type" && base[i - 1] !== "--vcpu-type"),
      "--vcpu-family",
      f,
      "--vcpu-model",
      m,
      "--vcpu-stepping",
      st,
    ];
    expect(await digest(fms("23", "1", "2"))).toBe(one.expected);
    expect(await digest(fms("023", "01", "2"))).toBe(one.expected);
    await usage(fms("0x17", "1", "2"), /--vcpu-family/);
    await usage(fms("23", "1.0", "2"), /--vcpu-model/);
  });

  it("--snp-ovmf-hash is bytes.fromhex: no 0x; whitespace between byte pairs only", async () => {
    const seeded = byName("snp_ovmf_hash_gen_feature_snp_only");
    const h = seeded.snp_ovmf_hash!;
    const args = (v: string) => {
      const a = argsOf(seeded).slice(1);
      a[a.indexOf("--snp-ovmf-hash") + 1] = v;
      return a;
    };
    expect(await digest(args(h))).toBe(seeded.expected);
    expect(await digest(args(h.toUpperCase()))).toBe(seeded.expected);
    expect(await digest(args(h.match(/../g)!.join(" ")))).toBe(seeded.expected);
    for (const bad of [`0x${h}`, `${h.slice(0, 3)} ${h.slice(3)}`, h.slice(2)]) {
      const r = await measure(args(bad));
      expect(r.code, bad).toBe(1);
      expect(r.stderr).toMatch(/^error ERR_MEASUREMENT: measure: firmware hash must be 48 bytes of hex/);
    }
  });

  it("--append must be valid UTF-8 (U+FFFD is what Node makes of invalid bytes); empty values are none", async () => {
    const withAppend = (v: string) => {
      const a = [...base];
      a[a.indexOf("--append") + 1] = v;
      return a;
    };
    await usage(withAppend("console=ttyS0 \uFFFD"), /--append is not valid UTF-8/);
    await usage(withAppend("console=\ud800"), /--append is not valid Unicode/);
    expect(await digest(withAppend("café"))).toMatch(/^[0-9a-f]{96}$/);
    // No kernel: sev-snp-measure ignores an empty --append and an empty --initrd.
    const none = byName("snp_without_kernel_feature_snp_only");
    expect(await digest([...argsOf(none).slice(1), "--append", "", "--initrd", ""])).toBe(none.expected);
    // With a kernel, an empty --initrd is no initrd and an empty --append no command line.
    const k = byName("snp_guest_feature_snp_only");
    const noInitrd = argsOf(k)
      .slice(1)
      .filter((a, i, all) => a !== "--initrd" && all[i - 1] !== "--initrd");
    expect(await digest([...noInitrd, "--initrd", ""])).toBe(await digest(noInitrd));
    // An empty --kernel is refused (sev-snp-measure would silently drop kernel, initrd and cmdline).
    await usage([...argsOf(none).slice(1), "--kernel", ""], /--kernel/);
    expect(existsSync(kernel)).toBe(true);
  });

  it("firmware whose metadata header is too small for its descriptors is refused", async () => {
    const fw = new Uint8Array(readFileSync(ovmf));
    new DataView(fw.buffer).setUint32(0xaac + 4, 16 + 6 * 12, true); // 7 descriptors, room for 6
    const dir = mkdtempSync(join(tmpdir(), "measure-"));
    writeFileSync(join(dir, "ovmf.bin"), fw);
    const a = [...base];
    a[a.indexOf("--ovmf") + 1] = join(dir, "ovmf.bin");
    const r = await measure(a);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error ERR_MEASUREMENT: ovmf: SEV metadata header too small for its descriptors\n");
  });
});

describe("cleanroom sim init", () => {
  it("writes public roots and expectations, and private keys readable by the owner only", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sim-")), "platform");
    const r = await runCli(registerSimCommand, ["sim", "init", dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--trust-sim-root .*sim-roots\.pem/);
    expect(readFileSync(join(dir, "sim-roots.pem"), "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(statSync(join(dir, "platform-secrets.json")).mode & 0o077).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")).measurement).toMatch(
      /^[0-9a-f]{96}$/,
    );
    expect(existsSync(join(dir, "sim-roots.pem"))).toBe(true);
  });
});
