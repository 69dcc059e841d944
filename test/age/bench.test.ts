import { expect, it } from "vitest";
import { benchAgeDecrypt } from "../../scripts/bench/age-decrypt.js";

// Throughput itself is machine-dependent and measured by running the script; this only checks
// that the benchmark decrypts what it claims to and reports consistent numbers.
it("benchAgeDecrypt measures both paths over the same bytes", async () => {
  const { ageMBps, rawMBps, ratio } = await benchAgeDecrypt(4 * 1024 * 1024 + 123);
  expect(ageMBps).toBeGreaterThan(0);
  expect(rawMBps).toBeGreaterThan(0);
  expect(ratio).toBeCloseTo(ageMBps / rawMBps, 10);
});
