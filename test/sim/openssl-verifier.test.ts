/**
 * The independent openssl verifier shipped with the SEV-SNP vectors accepts only AMD's roots.
 * Run against a simulated report and chain, every check but the root pin must pass; with the
 * simulated ARK added to its pin list (in a temporary copy), the whole report must PASS. This
 * shows the simulated format is byte-faithful to hardware evidence.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createSimAmdChain } from "../../attestation/sim/amd.js";
import { signSimReport, simMeasurement } from "../../attestation/sim/snp.js";
import { SNP_DIR } from "../snp/vectors.js";
import { needsTool } from "../tools.js";

const SCRIPT = join(SNP_DIR, "verify-with-openssl.sh");
describe("verify-with-openssl.sh on simulated evidence", async () => {
  needsTool("openssl", "python3");
  const chain = await createSimAmdChain({ product: "Milan" });
  const dir = mkdtempSync(join(tmpdir(), "sim-openssl-"));
  const vector = join(dir, "sim-milan");
  mkdirSync(vector);
  const reportData = new Uint8Array(64).fill(0x5a);
  const report = await signSimReport(chain, { reportData, measurement: await simMeasurement() });
  writeFileSync(join(vector, "report.bin"), report);
  const tampered = report.slice();
  tampered[0x90]! ^= 1;
  writeFileSync(join(vector, "report.tampered-measurement.bin"), tampered);
  writeFileSync(join(vector, "vcek.der"), new Uint8Array(chain.vcek.rawData));
  writeFileSync(join(vector, "ask.pem"), chain.ask.toString("pem"));
  writeFileSync(join(vector, "ark.pem"), chain.ark.toString("pem"));
  const run = (script: string) => spawnSync("bash", [script, vector], { encoding: "utf8" });

  it("passes every signature and path check except the AMD root pin", () => {
    const out = run(SCRIPT).stdout;
    expect(out).toMatch(/FAIL ARK is a pinned AMD root/);
    expect(out).toMatch(/ok {3}ARK self-signed/);
    expect(out).toMatch(/ok {3}ASK signed by ARK/);
    expect(out).toMatch(/ok {3}VCEK signed by ASK/);
    expect(out).toMatch(/ok {3}openssl verify -no_check_time/);
    expect(out).toMatch(/ok {3}endorsement key is EC P-384/);
    expect(out).toMatch(/^FAIL sim-milan\/report.bin$/m);
  });

  it("passes the report signature once the simulated ARK is pinned, and fails a tampered copy", () => {
    const fp = createHash("sha256").update(new Uint8Array(chain.ark.rawData)).digest("hex");
    const script = readFileSync(SCRIPT, "utf8").replace(
      /^PINNED_ARKS="/m,
      `PINNED_ARKS="${fp} ARK-Simulated\n`,
    );
    const copy = join(dir, "verify-with-sim-pin.sh");
    writeFileSync(copy, script);
    const res = run(copy);
    expect(res.stdout).toMatch(/^PASS sim-milan\/report.bin$/m);
    expect(res.stdout).toMatch(/^FAIL sim-milan\/report.tampered-measurement.bin \(expected/m);
    expect(res.status).toBe(0);
  });
});
