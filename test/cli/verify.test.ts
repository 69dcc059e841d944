import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { registerVerifyCommand } from "../../client/cli/commands/verify.js";
import {
  VECTORS as NITRO_URL,
  tampered as nitroTampered,
  vectors as nitroVectors,
  timestampOf,
} from "../nitro/helpers.js";
import { loadVector, VECTOR_NAMES } from "../snp/vectors.js";
import { runCli } from "./run.js";

const NITRO_DIR = fileURLToPath(NITRO_URL);
const verify = (args: string[]) => runCli(registerVerifyCommand, ["verify", ...args]);

function snpArgs(name: string): string[] {
  const v = loadVector(name);
  const leaf = v.files.find((f) => f === "vcek.der" || f === "vlek.der")!;
  const ask = v.files.find((f) => f === "ask.pem" || f === "asvk.pem")!;
  const extra = name === "milan-aws-vlek-v3" ? ["--max-vmpl", "1"] : [];
  return [
    `${v.dir}report.bin`,
    "--vcek",
    v.dir + leaf,
    "--ask",
    v.dir + ask,
    "--ark",
    `${v.dir}ark.pem`,
    "--at",
    v.at.toISOString(),
    ...extra,
  ];
}

describe("cleanroom verify (SEV-SNP)", () => {
  for (const name of VECTOR_NAMES) {
    const debug = name.includes("debug");
    it(`${name}: ${debug ? "refused by default, accepted with --allow-debug" : "verifies"}`, async () => {
      const r = await verify([...snpArgs(name), "--json"]);
      const json = JSON.parse(r.stdout);
      expect(json.platform).toBe("sev-snp");
      expect(r.code).toBe(debug ? 1 : 0);
      expect(json.verified).toBe(!debug);
      if (debug) {
        expect(json.errors[0].code).toBe("ERR_POLICY");
        expect((await verify([...snpArgs(name), "--allow-debug"])).code).toBe(0);
      }
    });
  }

  it("refuses every tampered copy", async () => {
    const v = loadVector("milan-virtee-v2");
    const args = snpArgs("milan-virtee-v2").slice(1);
    for (const f of v.files.filter((x) => x.startsWith("report.tampered-"))) {
      const r = await verify([v.dir + f, ...args]);
      expect(r.code, f).toBe(1);
      expect(r.stdout).toMatch(/REFUSED/);
    }
  });

  it("prints one ✓ line per check and the claims", async () => {
    const r = await verify(snpArgs("turin-oak-v5"));
    expect(r.stdout).toMatch(/✓ report signature/);
    expect(r.stdout).toMatch(/measurement: [0-9a-f]{96}/);
    expect(r.stdout).toMatch(/VERIFIED/);
  });

  it("refuses a measurement that differs from --measurement", async () => {
    const r = await verify([...snpArgs("milan-oak-v3"), "--measurement", "00".repeat(48)]);
    expect(r.code).toBe(1);
  });

  it("refuses after the certificates expired", async () => {
    const args = snpArgs("milan-aws-vlek-v3");
    args[args.indexOf("--at") + 1] = "2026-01-01T00:00:00Z";
    const r = await verify([...args, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("ERR_CERTIFICATE");
  });

  it("exits 2 on usage and I/O errors", async () => {
    expect((await verify(["/nonexistent/report.bin"])).code).toBe(2);
    expect((await verify([...snpArgs("milan-oak-v3"), "--at", "yesterday"])).code).toBe(2);
    expect((await verify([...snpArgs("milan-oak-v3"), "--platform", "tdx"])).code).toBe(2);
  });

  it("refuses bytes that are neither format", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    writeFileSync(join(dir, "junk.bin"), "not evidence");
    const r = await verify([join(dir, "junk.bin"), "--json"]);
    expect(r.code).toBe(1);
  });
});

describe("cleanroom verify (Nitro)", () => {
  for (const v of nitroVectors) {
    it(`${v.name}: verifies at its own time${v.provenanceDebug ? " only with --allow-debug" : ""}`, async () => {
      const file = join(NITRO_DIR, v.name, "attestation.cbor");
      const at = timestampOf(v.bytes).toISOString();
      const r = await verify([file, "--at", at, "--json"]);
      expect(JSON.parse(r.stdout).platform).toBe("nitro");
      expect(r.code).toBe(v.provenanceDebug ? 1 : 0);
      if (v.provenanceDebug) expect((await verify([file, "--at", at, "--allow-debug"])).code).toBe(0);
    });
  }

  it("refuses every tampered document", async () => {
    for (const t of nitroTampered) {
      const r = await verify([
        join(NITRO_DIR, t.name),
        "--at",
        timestampOf(nitroVectors[0]!.bytes).toISOString(),
      ]);
      expect(r.code, t.name).toBe(1);
    }
  });

  it("checks --pcr values", async () => {
    const v = nitroVectors.find((x) => !x.provenanceDebug)!;
    const file = join(NITRO_DIR, v.name, "attestation.cbor");
    const at = timestampOf(v.bytes).toISOString();
    const r = await verify([file, "--at", at, "--pcr", `0=${"00".repeat(48)}`]);
    expect(r.code).toBe(1);
  });
});
