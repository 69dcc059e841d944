import { describe, expect, it } from "vitest";
import { bindingData, type EnclaveKeys } from "../../attestation/binding.js";
import { bytesEqual } from "../../attestation/bytes.js";
import { bundleEvidence, type EvidencePolicy, verifyEvidenceBundle } from "../../attestation/evidence.js";
import { certificatesFromInput } from "../../attestation/pem.js";
import { simNitroEvidence } from "../../attestation/sim/nitro.js";
import {
  createSimPlatform,
  exportSimPlatform,
  importSimPlatform,
  SIM_FILES,
  simExpected,
} from "../../attestation/sim/platform.js";
import { simSnpEvidence } from "../../attestation/sim/snp.js";

const platform = await createSimPlatform();
const files = await exportSimPlatform(platform);
const roots = certificatesFromInput(files[SIM_FILES.roots]!);
const expected = simExpected(platform);

const keys: EnclaveKeys = {
  signingKey: {
    kty: "EC",
    crv: "P-256",
    x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
  },
  ageRecipient: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
};
const contractDigest = "ab".repeat(32);
const nonce = new Uint8Array(32).fill(7);

async function snpBundle(opts: { debug?: boolean; nonce?: Uint8Array; digest?: string | null } = {}) {
  const digest = opts.digest === undefined ? contractDigest : opts.digest;
  const reportData = await bindingData({
    keys,
    contractDigest: digest,
    nonce: opts.nonce ?? nonce,
  });
  const ev = await simSnpEvidence(platform.amd, {
    reportData,
    measurement: platform.measurement,
    debug: opts.debug ?? false,
  });
  return bundleEvidence(ev, keys, digest, opts.nonce ?? nonce);
}

async function nitroBundle(pcrs?: Map<number, Uint8Array>) {
  const userData = await bindingData({ keys, contractDigest, nonce });
  const ev = await simNitroEvidence(platform.nitro, { userData, nonce, ...(pcrs ? { pcrs } : {}) });
  return bundleEvidence(ev, keys, contractDigest, nonce);
}

const trusting: EvidencePolicy = {
  trustedSimRoots: roots,
  measurements: [expected.measurement],
  pcrs: expected.pcrs,
};

describe("simulated SEV-SNP platform", () => {
  it("verifies only when its root is trusted, and says it is simulated", async () => {
    const bundle = await snpBundle();
    const ok = await verifyEvidenceBundle(bundle, { nonce, contractDigest }, trusting);
    expect(ok.errors).toEqual([]);
    expect(ok.verified).toBe(true);
    expect(ok.simulated).toBe(true);
    const refused = await verifyEvidenceBundle(
      bundle,
      { nonce, contractDigest },
      { measurements: [expected.measurement] },
    );
    expect(refused.verified).toBe(false);
    expect(refused.errors[0]?.code).toBe("ERR_SIMULATED_EVIDENCE");
  });

  it("refuses a different nonce, contract or key set", async () => {
    const bundle = await snpBundle();
    const otherNonce = new Uint8Array(32).fill(8);
    expect(
      (await verifyEvidenceBundle(bundle, { nonce: otherNonce, contractDigest }, trusting)).verified,
    ).toBe(false);
    expect(
      (await verifyEvidenceBundle(bundle, { nonce, contractDigest: "cd".repeat(32) }, trusting)).verified,
    ).toBe(false);
    // A host that swaps the keys next to genuine evidence breaks the binding.
    const swapped = {
      ...bundle,
      keys: { ...keys, ageRecipient: "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj" },
    };
    const r = await verifyEvidenceBundle(swapped, { nonce, contractDigest }, trusting);
    expect(r.verified).toBe(false);
    expect(r.errors[0]?.code).toBe("ERR_POLICY");
    // ...and so does one that relabels the bundle's nonce or contract without new evidence.
    const relabelled = { ...bundle, nonce: "08".repeat(32) };
    expect(
      (await verifyEvidenceBundle(relabelled, { nonce: otherNonce, contractDigest }, trusting)).verified,
    ).toBe(false);
  });

  it("refuses an unexpected measurement and a debug guest", async () => {
    const bundle = await snpBundle();
    const wrong = await verifyEvidenceBundle(
      bundle,
      { nonce, contractDigest },
      { ...trusting, measurements: ["00".repeat(48)] },
    );
    expect(wrong.verified).toBe(false);
    const debug = await verifyEvidenceBundle(
      await snpBundle({ debug: true }),
      { nonce, contractDigest },
      trusting,
    );
    expect(debug.verified).toBe(false);
    expect(debug.errors[0]?.code).toBe("ERR_POLICY");
  });

  it("refuses when no measurement is pinned (a policy configuration error)", async () => {
    const r = await verifyEvidenceBundle(
      await snpBundle(),
      { nonce, contractDigest },
      { trustedSimRoots: roots },
    );
    expect(r.verified).toBe(false);
    expect(r.errors[0]?.code).toBe("ERR_POLICY_CONFIG");
  });

  it("simulated evidence passes the shipped minimum TCB, and a raised one refuses it", async () => {
    const bundle = await snpBundle();
    const ok = await verifyEvidenceBundle(bundle, { nonce, contractDigest }, trusting);
    expect(ok.checks.find((c) => c.name === "minimum TCB")).toEqual({
      name: "minimum TCB",
      ok: true,
      detail: "default (AMD-SB-3019)",
    });
    const raised = await verifyEvidenceBundle(
      bundle,
      { nonce, contractDigest },
      { ...trusting, snp: { minimumTcb: { ucode: 255 } } },
    );
    expect(raised.errors).toEqual([
      { code: "ERR_TCB", message: "policy: reported TCB below the minimum: microcode" },
    ]);
  });

  it("binds an enclave with no contract yet to the all-zero digest", async () => {
    const bundle = await snpBundle({ digest: null });
    expect((await verifyEvidenceBundle(bundle, { nonce, contractDigest: null }, trusting)).verified).toBe(
      true,
    );
  });

  it("survives export and import of its secrets", async () => {
    const again = await importSimPlatform(files[SIM_FILES.secrets]!);
    expect(bytesEqual(new Uint8Array(again.amd.ark.rawData), new Uint8Array(platform.amd.ark.rawData))).toBe(
      true,
    );
    const reportData = await bindingData({ keys, contractDigest, nonce });
    const ev = await simSnpEvidence(again.amd, { reportData, measurement: again.measurement });
    const r = await verifyEvidenceBundle(
      bundleEvidence(ev, keys, contractDigest, nonce),
      { nonce, contractDigest },
      trusting,
    );
    expect(r.verified).toBe(true);
  });
});

describe("simulated Nitro platform", () => {
  it("verifies only when its root is trusted", async () => {
    const bundle = await nitroBundle();
    const ok = await verifyEvidenceBundle(bundle, { nonce, contractDigest }, trusting);
    expect(ok.errors).toEqual([]);
    expect(ok.verified && ok.simulated).toBe(true);
    const refused = await verifyEvidenceBundle(bundle, { nonce, contractDigest }, { pcrs: expected.pcrs });
    expect(refused.errors[0]?.code).toBe("ERR_SIMULATED_EVIDENCE");
  });

  it("refuses a changed nonce and debug-mode PCRs", async () => {
    const bundle = await nitroBundle();
    expect(
      (await verifyEvidenceBundle(bundle, { nonce: new Uint8Array(32), contractDigest }, trusting)).verified,
    ).toBe(false);
    const zero = new Map(platform.nitro.pcrs);
    for (const i of [0, 1, 2]) zero.set(i, new Uint8Array(48));
    const debug = await verifyEvidenceBundle(
      await nitroBundle(zero),
      { nonce, contractDigest },
      { ...trusting, pcrs: { 0: "00".repeat(48), 1: "00".repeat(48), 2: "00".repeat(48) } },
    );
    expect(debug.verified).toBe(false);
    expect(debug.errors[0]?.code).toBe("ERR_POLICY");
  });

  it("a policy that does not pin PCR0-2 (e.g. PCR3 only) is a configuration error", async () => {
    const bundle = await nitroBundle();
    const partial: Record<number, string>[] = [{ 3: expected.pcrs[0]! }, { 0: expected.pcrs[0]! }, {}];
    for (const pcrs of partial) {
      const r = await verifyEvidenceBundle(
        bundle,
        { nonce, contractDigest },
        { trustedSimRoots: roots, pcrs },
      );
      expect(r.verified).toBe(false);
      expect(r.errors[0]?.code).toBe("ERR_POLICY_CONFIG");
    }
    // allowAnyMeasurement is the explicit development escape.
    const any = await verifyEvidenceBundle(
      bundle,
      { nonce, contractDigest },
      { trustedSimRoots: roots, allowAnyMeasurement: true },
    );
    expect(any.errors).toEqual([]);
  });
});
