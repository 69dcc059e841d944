/**
 * Smoke test of `npm run bench`: the compiled benchmark (dist/, built by `npm ci` → prepare) at a
 * tiny size must finish and print, as its last line, one JSON object with every headline figure
 * and every stage's timings. No timing is asserted: only shape, and that the clean room's answer
 * equals plain DuckDB's.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../../dist/scripts/bench/main.js", import.meta.url));
const positive = expect.any(Number);

describe("npm run bench (tiny)", () => {
  it("prints a table and a last-line JSON object with every stage", () => {
    expect(existsSync(MAIN), "run `npm run build` first (npm ci does)").toBe(true);
    const run = spawnSync(
      process.execPath,
      [
        MAIN,
        "--rows",
        "20000",
        "--json",
        "--decrypt-mib",
        "4",
        "--verify-seconds",
        "1",
        "--memory-limit",
        "1GB",
      ],
      { encoding: "utf8", timeout: 170_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines.some((l) => l.startsWith("### 1. Privacy tax"))).toBe(true);
    const r = JSON.parse(lines[lines.length - 1]!);
    for (const k of [
      "privacyTax",
      "decryptRatio",
      "relayRatio",
      "snpVerifyPerSec",
      "memoryMBPerMillionRows",
    ]) {
      expect(r[k], k).toBeGreaterThan(0);
    }
    expect(r.machine).toMatchObject({ cpus: positive, cpuModel: expect.any(String), node: process.version });
    expect(r.privacyTaxRuns).toHaveLength(1);
    const tax = r.privacyTaxRuns[0];
    expect(tax.rowsPerParty).toBe(20000);
    expect(tax.resultsMatch).toBe(true);
    expect(tax.enclave.rowsLoaded).toBe(tax.rows.purchases + tax.rows.exposures);
    for (const k of ["partnerEncryptS", "grantS", "decryptLoadS", "queryS", "totalS"]) {
      expect(tax.enclave[k], k).toBeGreaterThan(0);
    }
    for (const k of ["loadS", "queryS", "totalS"]) expect(tax.plain[k], k).toBeGreaterThan(0);
    // Each phase is its fastest round's; the totals are the sums of the phases reported.
    expect(tax.enclave.totalS).toBeCloseTo(
      tax.enclave.grantS + tax.enclave.decryptLoadS + tax.enclave.queryS,
      10,
    );
    expect(tax.plain.totalS).toBeCloseTo(tax.plain.loadS + tax.plain.queryS, 10);
    expect(tax.ratio).toBeCloseTo(tax.enclave.totalS / tax.plain.totalS, 10);
    if (process.platform === "linux") {
      expect(typeof r.machine.freePageReporting).toBe("boolean");
      // The main thread's share of the load's CPU, read per thread: part of the process's total.
      expect(tax.enclave.decryptLoadMainCpuS).toBeGreaterThanOrEqual(0);
      expect(tax.enclave.decryptLoadMainCpuS).toBeLessThanOrEqual(tax.enclave.decryptLoadCpuS + 0.02);
      // The deployed enclave's main thread did the receiving: some CPU, read from its /proc entry.
      expect(r.relay.enclaveMainCpuS).toBeGreaterThan(0);
    }
    expect(r.decrypt).toMatchObject({ ageMBps: positive, rawMBps: positive, ratio: positive });
    expect(r.decrypt.opensslMBps === null || r.decrypt.opensslMBps > 0).toBe(true);
    for (const p of ["snp", "nitro"]) {
      expect(r.verify[p]).toMatchObject({
        vector: expect.any(String),
        coldPerSec: positive,
        warmPerSec: positive,
      });
    }
    // The SEV-SNP target is judged on a chip never seen before: the headline is the cold rate.
    expect(r.snpVerifyPerSec).toBe(r.verify.snp.coldPerSec);
    expect(r.relay).toMatchObject({
      relayGrantIngestS: positive,
      directGrantIngestS: positive,
      ratio: positive,
    });
    expect(r.relay.memory.rowsLoaded).toBe(tax.rows.purchases + tax.rows.exposures);
    // The thread series at the largest size: 1, 2 and every CPU, each with the same-run baseline.
    const counts = [...new Set([1, 2, availableParallelism()])].sort((a, b) => a - b);
    expect(r.privacyTaxByThreads.map((t: { threads: number }) => t.threads)).toEqual(counts);
    for (const t of r.privacyTaxByThreads) {
      expect(t.resultsMatch).toBe(true);
      expect(t.ratio).toBeCloseTo(t.enclave.totalS / t.plain.totalS, 10);
    }
    // The 2-thread entry is the headline run itself.
    expect(r.privacyTaxByThreads.find((t: { threads: number }) => t.threads === 2).ratio).toBe(r.privacyTax);
    // Amdahl: s + p is each side's 1-thread time, and the projections follow from the fits.
    const one = r.privacyTaxByThreads[0];
    const { enclave, plain } = r.amdahl.fits;
    expect(enclave.serialS + enclave.parallelS).toBeCloseTo(one.enclave.totalS, 10);
    expect(plain.serialS + plain.parallelS).toBeCloseTo(one.plain.totalS, 10);
    const at = (x: { serialS: number; parallelS: number }, n: number) => x.serialS + x.parallelS / n;
    expect(r.projectedTax16).toBeCloseTo(at(enclave, 16) / at(plain, 16), 10);
    expect(r.projectedTax64).toBeCloseTo(at(enclave, 64) / at(plain, 64), 10);
    // Whether the 2-thread load was bounded by this machine's cores follows from its own CPU time.
    const two = r.privacyTaxByThreads.find((t: { threads: number }) => t.threads === 2);
    const busy = two.enclave.decryptLoadCpuS / two.enclave.decryptLoadS;
    expect(r.amdahl.busyCoresAtTwo).toBeCloseTo(busy, 10);
    expect(r.amdahl.coreBound).toBe(busy >= 0.9 * availableParallelism());
    expect(r.physicalLimit.loadFloorRatio).toBeGreaterThan(1);
    // The work account of the headline run: each side's CPU is its phases' CPU, the owner's checks
    // were run and timed on their own, and the extras add up to the difference.
    const w = r.work;
    expect(tax.enclave.queryCpuS).toBeGreaterThan(0);
    expect(tax.plain.queryCpuS).toBeGreaterThan(0);
    expect(w.extra.ownerChecksCpuS).toBe(tax.plain.ownerChecksCpuS);
    expect(w.extra.ownerChecksCpuS).toBeGreaterThan(0);
    expect(w.enclaveCpuS).toBeCloseTo(tax.enclave.decryptLoadCpuS + tax.enclave.queryCpuS, 10);
    expect(w.plainCpuS).toBeCloseTo(tax.plain.loadCpuS + tax.plain.queryCpuS, 10);
    expect(w.ratio).toBeCloseTo(w.enclaveCpuS / w.plainCpuS, 10);
    expect(w.extra.decryptCpuS).toBeCloseTo(tax.csvMB / r.decrypt.rawMBps, 10);
    const extra = w.extra.ownerChecksCpuS + w.extra.decryptCpuS + w.extra.queryCpuS + w.extra.loadRestCpuS;
    expect(extra).toBeCloseTo(w.enclaveCpuS - w.plainCpuS, 10);
    expect(w.cores).toBe(availableParallelism());
    const floorCpu = w.plainCpuS + w.extra.ownerChecksCpuS + w.extra.decryptCpuS;
    expect(w.floorRatio).toBeCloseTo(floorCpu / w.cores / tax.plain.totalS, 10);
    expect(r.decrypt).toMatchObject({ parallelMBps: positive, workers: availableParallelism() });
    expect(Object.keys(r.targets)).toEqual(
      expect.arrayContaining([
        "decryptRatio",
        "privacyTax",
        "projectedTax16",
        "relayRatio",
        "snpVerifyPerSec",
      ]),
    );
  });
});
