/**
 * Fuzzing the control-message checks: JWE decryption at the enclave, signed-request verification
 * (including correctly signed but malformed payloads), and contract validation.
 */
import { describe, expect, it } from "vitest";
import { fuzz, report, size } from "./harness.js";
import { contractTarget, joseDecryptTarget, joseVerifyTarget, joseWorld } from "./targets.js";

const FULL = 100_000;

describe("envelopes and the contract", () => {
  it("JWE decryption at the enclave: only ERR_ENVELOPE", { timeout: 3_600_000 }, async () => {
    const target = await joseDecryptTarget(await joseWorld());
    const f = await fuzz(target, { numRuns: size(400, FULL), perCaseMs: 1_000, maxHeapGrowthMiB: 64 });
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(Object.keys(f.codes)).toEqual(["ERR_ENVELOPE"]);
    // Valid JWEs of random bytes decrypt: the fuzzer reaches past the cryptography.
    expect(f.accepted).toBeGreaterThan(0);
  });

  it("signed-request verification: only typed errors", { timeout: 3_600_000 }, async () => {
    const target = await joseVerifyTarget(await joseWorld());
    const f = await fuzz(target, { numRuns: size(400, FULL), perCaseMs: 1_000, maxHeapGrowthMiB: 64 });
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    // Signed-but-malformed payloads reach the shape checks behind the signature.
    expect(f.codes["ERR_ENVELOPE"]).toBeGreaterThan(0);
  });

  it("contract validation: only ERR_CONTRACT", { timeout: 3_600_000 }, async () => {
    const target = await contractTarget();
    const f = await fuzz(target, { numRuns: size(1500, FULL), perCaseMs: 1_000, maxHeapGrowthMiB: 64 });
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(Object.keys(f.codes)).toEqual(["ERR_CONTRACT"]);
    expect(f.accepted).toBeGreaterThan(0);
  });
});
