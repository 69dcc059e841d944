/**
 * Fuzzing the byte parsers that face untrusted input: SEV-SNP reports and certificate tables,
 * Nitro COSE/CBOR documents, age headers. Only typed errors, no slow case, bounded heap.
 * `npm test` runs a reduced number of cases; `npm run fuzz` runs 100 000 per target.
 */
import { describe, expect, it } from "vitest";
import { type FuzzTarget, fuzz, report, size } from "./harness.js";
import { ageHeaderTarget, nitroTarget, snpCertTableTarget, snpReportTarget } from "./targets.js";

const cases: [string, () => FuzzTarget<Uint8Array> | Promise<FuzzTarget<Uint8Array>>, number][] = [
  ["SEV-SNP report parser", snpReportTarget, 1500],
  ["SEV-SNP certificate table parser", snpCertTableTarget, 1500],
  ["Nitro COSE_Sign1 / CBOR document parser", nitroTarget, 1000],
  ["age header parser", ageHeaderTarget, 1500],
];

describe("byte parsers", () => {
  for (const [title, make, ci] of cases) {
    it(`${title}: only typed errors, bounded time and memory`, { timeout: 3_600_000 }, async () => {
      const target = await make();
      const f = await fuzz(target, { numRuns: size(ci, 100_000), perCaseMs: 1_000, maxHeapGrowthMiB: 64 });
      report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
      expect(f.cases).toBe(size(ci, 100_000));
      // The mutations reach both outcomes: some inputs still parse, most are refused.
      expect(f.refused).toBeGreaterThan(0);
    });
  }
});
