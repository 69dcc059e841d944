import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { AWS_NITRO_ROOT_G1_DER, parseNitro, verifyNitro } from "../../attestation/nitro/index.js";
import { ANY_IMAGE, ownImage, readVector, tampered, timestampOf, vectors } from "./helpers.js";

const HOUR = 3_600_000;
const codes = (r: { errors: { code: string }[] }) => r.errors.map((e) => e.code);

describe("real Nitro vectors", () => {
  it("finds all six genuine documents and the four tampered copies", () => {
    expect(vectors.length).toBe(6);
    expect(tampered.length).toBe(4);
  });

  it.each(vectors)("$name verifies at its own timestamp, pinned to its own PCR0-2", async (v) => {
    const at = timestampOf(v.bytes);
    expect(at.getTime()).toBe(v.provenanceTimestamp);
    const r = await verifyNitro(v.bytes, { at, allowDebug: true, ...ownImage(v.bytes) });
    expect(r.errors).toEqual([]);
    expect(r.verified).toBe(true);
    expect(r.simulated).toBe(false);
    expect(r.platform).toBe("nitro");
    expect(r.checks.every((c) => c.ok)).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        "COSE_Sign1 format",
        "payload format",
        "root pinned",
        "chain signatures",
        "certificate validity",
        "document signature",
        "debug mode off",
        "PCR0",
        "PCR1",
        "PCR2",
      ]),
    );
    expect(r.claims.timestamp).toBe(at.toISOString());
    expect(r.claims.digest).toBe("SHA384");
    expect(parseNitro(v.bytes).document.cabundle[0]).toEqual(AWS_NITRO_ROOT_G1_DER);
  });

  it.each(vectors)("$name: debug documents refused by default, accepted with allowDebug", async (v) => {
    const at = timestampOf(v.bytes);
    const r = await verifyNitro(v.bytes, { ...ANY_IMAGE, at });
    expect(r.claims.debug).toBe(v.provenanceDebug);
    if (v.provenanceDebug) {
      expect(r.verified).toBe(false);
      expect(codes(r)).toEqual(["ERR_POLICY"]);
      expect(r.checks.find((c) => c.name === "debug mode off")?.ok).toBe(false);
      expect((await verifyNitro(v.bytes, { ...ANY_IMAGE, at, allowDebug: true })).verified).toBe(true);
    } else {
      expect(r.verified).toBe(true);
    }
  });

  it("two of the vectors are debug-mode documents", () => {
    expect(vectors.filter((v) => v.provenanceDebug).map((v) => v.name)).toEqual([
      "evervault-2022-10-12-debug-ascii-aux",
      "uid2-2021-04-26-us-west-1-debug",
    ]);
  });

  it.each(vectors)("$name fails 4 hours after its timestamp (leaf expired)", async (v) => {
    const at = new Date(timestampOf(v.bytes).getTime() + 4 * HOUR);
    const r = await verifyNitro(v.bytes, { ...ANY_IMAGE, at, allowDebug: true });
    expect(r.verified).toBe(false);
    expect(codes(r)).toEqual(["ERR_CERTIFICATE"]);
    expect(r.checks.find((c) => c.name === "certificate validity")?.ok).toBe(false);
  });

  it.each(vectors)("$name fails now (default time)", async (v) => {
    const r = await verifyNitro(v.bytes, { ...ANY_IMAGE, allowDebug: true });
    expect(codes(r)).toEqual(["ERR_CERTIFICATE"]);
  });

  it("fails before the leaf's notBefore", async () => {
    const v = vectors.find((x) => x.name.startsWith("evervault-2022-10-13"))!;
    const at = new Date(timestampOf(v.bytes).getTime() - 60_000);
    expect(codes(await verifyNitro(v.bytes, { ...ANY_IMAGE, at }))).toEqual(["ERR_CERTIFICATE"]);
  });

  it("uid2: leaf notBefore 100 ms before the timestamp still verifies", async () => {
    const v = vectors.find((x) => x.name.startsWith("uid2"))!;
    expect(
      (await verifyNitro(v.bytes, { ...ANY_IMAGE, at: timestampOf(v.bytes), allowDebug: true })).verified,
    ).toBe(true);
  });
});

describe("tampered copies", () => {
  const dir = "evervault-2022-10-13-signed-eif";
  const at = timestampOf(readVector(`${dir}/attestation.cbor`));
  const genuine = readVector(`${dir}/attestation.cbor`);
  const expected: Record<string, string> = {
    "attestation.tampered-pcr.cbor": "ERR_SIGNATURE",
    "attestation.tampered-sig.cbor": "ERR_SIGNATURE",
    "attestation.tampered-root.cbor": "ERR_UNTRUSTED_ROOT",
    "attestation.tampered-forged-chain.cbor": "ERR_UNTRUSTED_ROOT",
  };

  it.each(Object.entries(expected))("%s is refused with %s", async (file, code) => {
    // Pinned to the genuine document's image, as its verifier would be.
    const r = await verifyNitro(readVector(`${dir}/${file}`), { at, ...ownImage(genuine) });
    expect(r.verified).toBe(false);
    expect(codes(r)).toEqual([code]);
  });

  it("every tampered file on disk is covered above", () => {
    expect(tampered.map((t) => t.name.split("/")[1]).sort()).toEqual(Object.keys(expected).sort());
  });

  it("tampered-pcr fails exactly at the document signature, after the chain passed", async () => {
    const r = await verifyNitro(readVector(`${dir}/attestation.tampered-pcr.cbor`), {
      at,
      ...ownImage(genuine),
    });
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ["COSE_Sign1 format", true],
      ["payload format", true],
      ["root pinned", true],
      ["chain signatures", true],
      ["certificate constraints", true],
      ["certificate validity", true],
      ["document signature", false],
    ]);
  });

  it("the forged chain is otherwise self-consistent: trusting its root explicitly makes it verify", async () => {
    const bytes = readVector(`${dir}/attestation.tampered-forged-chain.cbor`);
    const fakeRoot = parseNitro(bytes).document.cabundle[0]!;
    expect(toHex(fakeRoot)).not.toBe(toHex(AWS_NITRO_ROOT_G1_DER));
    const r = await verifyNitro(bytes, { ...ANY_IMAGE, at, trustedRoots: [fakeRoot] });
    expect(r.errors).toEqual([]);
    expect(r.verified).toBe(true);
    expect(r.simulated).toBe(true);
  });

  it("tampered-root stays refused even when its self-made root is trusted (signatures break)", async () => {
    const bytes = readVector(`${dir}/attestation.tampered-root.cbor`);
    const fakeRoot = parseNitro(bytes).document.cabundle[0]!;
    const r = await verifyNitro(bytes, { ...ANY_IMAGE, at, trustedRoots: [fakeRoot] });
    expect(codes(r)).toEqual(["ERR_SIGNATURE"]);
  });
});
