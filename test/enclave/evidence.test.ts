/**
 * The enclave's evidence from the simulated platform verifies as a party would verify it: chain,
 * measurement, and the binding of the enclave's keys, its contract and the verifier's nonce.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { verifyEvidenceBundle } from "../../attestation/evidence.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import { approvals, contractFor, makeParties } from "./world.js";

let sim: SimPlatform;
let enclave: Enclave;
beforeAll(async () => {
  sim = await createSimPlatform();
  enclave = await Enclave.start({ provider: await createSimProvider({ sim }) });
});
afterAll(() => enclave.close());

describe("evidence from the simulated platform", () => {
  it("verifies before and after the contract, and only for the contract the enclave holds", async () => {
    const policy = {
      trustedSimRoots: [new Uint8Array(sim.amd.ark.rawData)],
      measurements: [toHex(sim.measurement)],
    };
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const before = await verifyEvidenceBundle(
      await enclave.evidence(toHex(nonce)),
      { nonce, contractDigest: null },
      policy,
    );
    expect(before.errors).toEqual([]);
    expect(before.verified).toBe(true);

    const { advertiser, publisher } = await makeParties();
    const contract = contractFor([advertiser, publisher]);
    await enclave.acceptContract({ contract, approvals: await approvals(contract, [advertiser, publisher]) });
    const digest = (await contractDigest(contract)).hex;
    const bundle = await enclave.evidence(toHex(nonce));
    expect((await verifyEvidenceBundle(bundle, { nonce, contractDigest: digest }, policy)).verified).toBe(
      true,
    );
    // A verifier expecting no contract (or another one) refuses it.
    expect((await verifyEvidenceBundle(bundle, { nonce, contractDigest: null }, policy)).verified).toBe(
      false,
    );
  });
});
