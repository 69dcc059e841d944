import { encode } from "cborg";
import { beforeAll, describe, expect, it } from "vitest";
import { concatBytes } from "../../attestation/bytes.js";
import { SimulatedEvidenceError, UntrustedRootError } from "../../attestation/errors.js";
import {
  encodeAttestationPayload,
  parseNitro,
  verifyNitro,
  verifyNitroEvidence,
} from "../../attestation/nitro/index.js";
import { SIMULATED_ORG } from "../../attestation/sim/names.js";
import { x509 } from "../../attestation/x509.js";
import {
  ANY_IMAGE,
  makeChain,
  sampleDocument,
  signDocument,
  signPayload,
  type TestChain,
} from "./helpers.js";

const NOW = Date.now();
const HOUR = 3_600_000;
const codes = (r: { errors: { code: string }[] }) => r.errors.map((e) => e.code);

describe("a chain to a caller-trusted (simulated) root", () => {
  let sim: TestChain;
  let other: TestChain;
  beforeAll(async () => {
    sim = await makeChain(SIMULATED_ORG, new Date(NOW - HOUR), new Date(NOW + 2 * HOUR));
    other = await makeChain("Someone Else", new Date(NOW - HOUR), new Date(NOW + 2 * HOUR));
  });

  it("verifies with trustedRoots and says simulated", async () => {
    const bytes = await signDocument(sampleDocument(sim, NOW), sim.leafKey);
    const r = await verifyNitro(bytes, { ...ANY_IMAGE, trustedRoots: [sim.rootDer] });
    expect(r.errors).toEqual([]);
    expect(r.verified).toBe(true);
    expect(r.simulated).toBe(true);
  });

  it("without trusting it: SimulatedEvidenceError for a cleanroom-simulated root, UntrustedRootError otherwise", async () => {
    const bytes = await signDocument(sampleDocument(sim, NOW), sim.leafKey);
    const r = await verifyNitro(bytes, ANY_IMAGE);
    expect(codes(r)).toEqual(["ERR_SIMULATED_EVIDENCE"]);
    expect(r.simulated).toBe(true);
    await expect(verifyNitroEvidence(parseNitro(bytes))).rejects.toThrow(SimulatedEvidenceError);

    const foreign = await signDocument(sampleDocument(other, NOW), other.leafKey);
    await expect(verifyNitroEvidence(parseNitro(foreign), { trustedRoots: [sim.rootDer] })).rejects.toThrow(
      UntrustedRootError,
    );
  });

  it("a document signed by a key other than the leaf's is refused", async () => {
    const bytes = await signDocument(sampleDocument(sim, NOW), other.leafKey);
    expect(codes(await verifyNitro(bytes, { ...ANY_IMAGE, trustedRoots: [sim.rootDer] }))).toEqual([
      "ERR_SIGNATURE",
    ]);
  });

  it("a leaf from another root under a trusted root's bundle is refused", async () => {
    const doc = { ...sampleDocument(sim, NOW), certificate: other.leafDer };
    const bytes = await signDocument(doc, other.leafKey);
    expect(codes(await verifyNitro(bytes, { ...ANY_IMAGE, trustedRoots: [sim.rootDer] }))).toEqual([
      "ERR_SIGNATURE",
    ]);
  });

  it("a CA certificate as the signing certificate is refused by the constraints", async () => {
    // The self-signed root as `certificate` chains to itself, but a CA may not sign documents.
    const doc = { ...sampleDocument(sim, NOW), certificate: sim.rootDer };
    const r = await verifyNitro(await signDocument(doc, sim.leafKey), {
      ...ANY_IMAGE,
      trustedRoots: [sim.rootDer],
    });
    expect(codes(r)).toEqual(["ERR_CERTIFICATE"]);
    expect(r.checks.at(-1)).toMatchObject({ name: "certificate constraints", ok: false });
  });

  it("a leaf with a critical extension the verifier does not understand is refused", async () => {
    const odd = new x509.Extension("1.3.6.1.4.1.99999.1", true, new Uint8Array([0x05, 0x00]));
    const chain = await makeChain(SIMULATED_ORG, new Date(NOW - HOUR), new Date(NOW + HOUR), [odd]);
    const r = await verifyNitro(await signDocument(sampleDocument(chain, NOW), chain.leafKey), {
      ...ANY_IMAGE,
      trustedRoots: [chain.rootDer],
    });
    expect(codes(r)).toEqual(["ERR_CERTIFICATE"]);
    expect(r.checks.at(-1)).toMatchObject({ name: "certificate constraints", ok: false });
  });

  it("an indefinite-length payload map verifies over its exact bytes", async () => {
    const definite = encodeAttestationPayload(sampleDocument(sim, NOW));
    const indefinite = concatBytes(new Uint8Array([0xbf]), definite.subarray(1), new Uint8Array([0xff]));
    const bytes = await signPayload(indefinite, sim.leafKey);
    const r = await verifyNitro(bytes, { ...ANY_IMAGE, trustedRoots: [sim.rootDer] });
    expect(r.errors).toEqual([]);
    // The signature covers the received bytes, so the definite re-encoding would not verify.
    expect(parseNitro(bytes).cose.payload[0]).toBe(0xbf);
  });

  it("a signed payload with a duplicate key is refused as a format error", async () => {
    const payload = encodeAttestationPayload(sampleDocument(sim, NOW));
    const dup = concatBytes(
      new Uint8Array([0xaa]),
      payload.subarray(1),
      encode("nonce"),
      new Uint8Array([0xf6]),
    );
    const r = await verifyNitro(await signPayload(dup, sim.leafKey), {
      ...ANY_IMAGE,
      trustedRoots: [sim.rootDer],
    });
    expect(codes(r)).toEqual(["ERR_EVIDENCE_FORMAT"]);
    expect(r.checks.at(-1)).toMatchObject({ name: "payload format", ok: false });
  });

  it("warm verification reuses the chain and still checks validity times", async () => {
    const bytes = await signDocument(sampleDocument(sim, NOW), sim.leafKey);
    const opts = { trustedRoots: [sim.rootDer] };
    expect((await verifyNitro(bytes, { ...ANY_IMAGE, ...opts })).verified).toBe(true);
    const late = await verifyNitro(bytes, { ...ANY_IMAGE, ...opts, at: new Date(NOW + 3 * HOUR) });
    expect(codes(late)).toEqual(["ERR_CERTIFICATE"]);
    // A cached chain is not a trusted one: without trustedRoots the same bytes are refused.
    expect(codes(await verifyNitro(bytes, ANY_IMAGE))).toEqual(["ERR_SIMULATED_EVIDENCE"]);
  });
});
