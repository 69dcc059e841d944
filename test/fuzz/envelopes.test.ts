/**
 * Fuzzing the control-message checks: JWE decryption at the enclave, signed-request verification
 * (including correctly signed but malformed payloads), response verification, the audit log,
 * contract approvals, evidence bundles, and contract validation. Each signed input has an oracle
 * (targets.ts): a mutation is refused or is the original, decoding to exactly what it does.
 */
import { describe, expect, it } from "vitest";
import { fuzz, report, size } from "./harness.js";
import {
  approvalsTarget,
  auditLogTarget,
  contractTarget,
  evidenceTarget,
  joseDecryptTarget,
  joseResponseTarget,
  joseVerifyTarget,
  joseWorld,
  simWorld,
} from "./targets.js";

const FULL = 100_000;
const opts = (ci: number, full = FULL) => ({
  numRuns: size(ci, full),
  perCaseMs: 1_000,
  maxHeapGrowthMiB: 64,
});

describe("envelopes and the contract", () => {
  it("JWE decryption at the enclave: only ERR_ENVELOPE; what decrypts is the original", {
    timeout: 3_600_000,
  }, async () => {
    const target = await joseDecryptTarget(await joseWorld());
    const f = await fuzz(target, opts(400));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(Object.keys(f.codes)).toEqual(["ERR_ENVELOPE"]);
    // Valid JWEs of random bytes decrypt: the fuzzer reaches past the cryptography.
    expect(f.accepted).toBeGreaterThan(0);
  });

  it("signed-request verification: typed refusals; what verifies is what was signed", {
    timeout: 3_600_000,
  }, async () => {
    const target = await joseVerifyTarget(await joseWorld());
    const f = await fuzz(target, opts(400));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    // Signed-but-malformed payloads reach the shape checks behind the signature.
    expect(f.codes["ERR_ENVELOPE"]).toBeGreaterThan(0);
    expect(f.codes["ERR_REQUEST_SIGNATURE"]).toBeGreaterThan(0);
  });

  it("response verification: typed refusals; only the original verifies", {
    timeout: 3_600_000,
  }, async () => {
    const target = await joseResponseTarget(await joseWorld());
    const f = await fuzz(target, opts(400));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.codes["ERR_RESPONSE_SIGNATURE"]).toBeGreaterThan(0);
  });

  it("audit log verification: ERR_AUDIT; only the original log verifies", {
    timeout: 3_600_000,
  }, async () => {
    const target = await auditLogTarget(await joseWorld(), await simWorld());
    const f = await fuzz(target, opts(300));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.codes["ERR_AUDIT"]).toBeGreaterThan(0);
  });

  it("contract approvals: ERR_CONTRACT_SIGNATURE; only the originals verify", {
    timeout: 3_600_000,
  }, async () => {
    const target = await approvalsTarget(await joseWorld());
    const f = await fuzz(target, opts(400));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.codes["ERR_CONTRACT_SIGNATURE"]).toBeGreaterThan(0);
  });

  it("evidence bundles: refused, or the original bundle with the original result", {
    timeout: 3_600_000,
  }, async () => {
    const target = await evidenceTarget(await simWorld());
    const f = await fuzz(target, opts(300, 20_000));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.refused).toBeGreaterThan(0);
  });

  it("contract validation: only ERR_CONTRACT", { timeout: 3_600_000 }, async () => {
    const target = await contractTarget();
    const f = await fuzz(target, opts(1500));
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(Object.keys(f.codes)).toEqual(["ERR_CONTRACT"]);
    expect(f.accepted).toBeGreaterThan(0);
  });
});
