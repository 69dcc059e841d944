import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
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
