import { describe, expect, it } from "vitest";
import { sha384, toHex } from "../../attestation/bytes.js";
import { PolicyConfigError, PolicyError, UsageError } from "../../attestation/errors.js";
import {
  checkNitroPolicy,
  checkNitroPolicyConfig,
  evaluateNitroPolicy,
  parseNitro,
  pcr8ForSigningCertificate,
  verifyNitro,
} from "../../attestation/nitro/index.js";
import { ANY_IMAGE, makeChain, sampleDocument, signDocument, timestampOf, vectors } from "./helpers.js";

const PROD = vectors.find((v) => v.name.startsWith("evervault-2022-10-13"))!.bytes;
const DEBUG = vectors.find((v) => v.name.startsWith("evervault-2022-10-12"))!.bytes;
const doc = parseNitro(PROD).document;
const at = timestampOf(PROD);
const pcrHex = (i: number) => toHex(doc.pcrs.get(i)!);
const image = { 0: pcrHex(0), 1: pcrHex(1), 2: pcrHex(2) };
/** The failing checks under `opts` (which pin no image unless they name PCRs themselves). */
const failing = async (opts: Parameters<typeof evaluateNitroPolicy>[1], d = doc) =>
  (await evaluateNitroPolicy(d, opts.pcrs ? opts : { ...ANY_IMAGE, ...opts }, at))
    .filter((c) => !c.ok)
    .map((c) => c.name);

describe("Nitro policy", () => {
  it("accepts the expected PCR0/1/2/3/4/8 (hex or bytes, record or map) and the exact nonce", async () => {
    const opts = {
      pcrs: { 0: pcrHex(0), 1: doc.pcrs.get(1)!, 2: pcrHex(2), 3: pcrHex(3), 4: pcrHex(4), 8: pcrHex(8) },
      nonce: toHex(doc.nonce!),
    };
    expect(await failing(opts)).toEqual([]);
    expect(
      await failing({
        pcrs: new Map([
          [0, pcrHex(0)],
          [1, pcrHex(1)],
          [2, pcrHex(2)],
        ]),
      }),
    ).toEqual([]);
    const r = await verifyNitro(PROD, { at, ...opts });
    expect(r.verified).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["PCR0", "PCR1", "PCR8", "nonce"]));
    expect(r.claims.pcrs).toMatchObject({ "0": pcrHex(0) });
    expect(r.claims.nonce).toBe(toHex(doc.nonce!));
    expect(r.claims.publicKey).toBeNull();
  });

  it("refuses a wrong PCR, a PCR the document lacks, and reports each failing check", async () => {
    const wrong = `${pcrHex(0).slice(0, -2)}00`;
    expect(await failing({ pcrs: { ...image, 0: wrong, 20: pcrHex(1) } })).toEqual(["PCR0", "PCR20"]);
    const r = await verifyNitro(PROD, { at, pcrs: { ...image, 0: wrong } });
    expect(r.verified).toBe(false);
    expect(r.errors).toEqual([{ code: "ERR_POLICY", message: "policy: PCR0 does not match" }]);
    await expect(checkNitroPolicy(doc, { pcrs: { ...image, 0: wrong } }, at)).rejects.toThrow(PolicyError);
  });

  it("debug mode is refused unless allowDebug; a production document passes the debug check", async () => {
    const debugDoc = parseNitro(DEBUG).document;
    expect(await failing({}, debugDoc)).toEqual(["debug mode off"]);
    expect(await failing({ allowDebug: true }, debugDoc)).toEqual([]);
    expect(await failing({})).toEqual([]);
  });

  it("nonce, user data, public key: exact match; null in the document fails an expectation", async () => {
    expect(await failing({ nonce: new Uint8Array(256) })).toEqual(["nonce"]);
    expect(await failing({ userData: "" })).toEqual(["user data"]);
    expect(await failing({ publicKey: "00" })).toEqual(["public key"]);
    const debugDoc = parseNitro(DEBUG).document;
    const aux = { allowDebug: true, userData: toHex(debugDoc.userData!), publicKey: debugDoc.publicKey! };
    expect(await failing(aux, debugDoc)).toEqual([]);
  });

  it("binding callback: false, a rejected promise or a throw all refuse", async () => {
    expect(await failing({ binding: (d) => d.nonce?.length === 256 })).toEqual([]);
    expect(await failing({ binding: async () => true })).toEqual([]);
    expect(await failing({ binding: () => false })).toEqual(["binding"]);
    expect(await failing({ binding: async () => Promise.reject(new Error("x")) })).toEqual(["binding"]);
    expect(
      await failing({
        binding: () => {
          throw new Error("x");
        },
      }),
    ).toEqual(["binding"]);
  });

  it("document age relative to the verification time", async () => {
    const later = new Date(at.getTime() + 10 * 60_000);
    const age = (maxAgeMs: number) => evaluateNitroPolicy(doc, { ...ANY_IMAGE, maxAgeMs }, later);
    expect((await age(5 * 60_000)).find((c) => !c.ok)?.name).toBe("document age");
    expect((await age(11 * 60_000)).every((c) => c.ok)).toBe(true);
  });

  it("module id pattern", async () => {
    expect(await failing({ moduleId: /^i-[0-9a-f]{17}-enc[0-9a-f]{16}$/ })).toEqual([]);
    expect(await failing({ moduleId: /^i-ffff/ })).toEqual(["module id"]);
  });

  it("malformed options are a UsageError, thrown even by verifyNitro", async () => {
    await expect(evaluateNitroPolicy(doc, { ...ANY_IMAGE, nonce: "zz" }, at)).rejects.toThrow(UsageError);
    await expect(evaluateNitroPolicy(doc, { pcrs: { ...image, 40: pcrHex(0) } }, at)).rejects.toThrow(
      UsageError,
    );
    await expect(evaluateNitroPolicy(doc, { pcrs: { ...image, 0: "00" } }, at)).rejects.toThrow(
      PolicyConfigError,
    );
    await expect(verifyNitro(PROD, { at, ...ANY_IMAGE, maxAgeMs: -1 })).rejects.toThrow(UsageError);
  });
});

describe("a Nitro policy must pin the image", () => {
  const refusedConfig = async (opts: Parameters<typeof verifyNitro>[1]) => {
    await expect(verifyNitro(PROD, { at, ...opts })).rejects.toMatchObject({ code: "ERR_POLICY_CONFIG" });
    await expect(evaluateNitroPolicy(doc, opts ?? {}, at)).rejects.toThrow(PolicyConfigError);
    await expect(checkNitroPolicy(doc, opts ?? {}, at)).rejects.toThrow(PolicyConfigError);
  };

  it("no PCRs, PCR0 or PCR0+PCR1 alone, PCR3/PCR4 only, PCR8 alone: a configuration error", async () => {
    await refusedConfig({});
    await refusedConfig({ pcrs: { 0: pcrHex(0) } });
    await refusedConfig({ pcrs: { 0: pcrHex(0), 1: pcrHex(1) } });
    await refusedConfig({ pcrs: { 3: pcrHex(3) } });
    await refusedConfig({ pcrs: { 3: pcrHex(3), 4: pcrHex(4) } });
    await refusedConfig({ pcrs: { 8: pcrHex(8) } });
    await refusedConfig({ pcrs: { 1: pcrHex(1), 2: pcrHex(2), 8: pcrHex(8) } });
  });

  it("the configuration is refused before the document is looked at", async () => {
    await expect(verifyNitro(new Uint8Array([1, 2, 3]), { pcrs: { 3: pcrHex(3) } })).rejects.toThrow(
      PolicyConfigError,
    );
  });

  it("PCR0+PCR1+PCR2 is accepted (with or without more PCRs)", async () => {
    await expect(checkNitroPolicyConfig({ pcrs: image })).resolves.toBeUndefined();
    expect((await verifyNitro(PROD, { at, pcrs: { ...image, 3: pcrHex(3) } })).verified).toBe(true);
  });

  it("allowAnyImage is the explicit development escape", async () => {
    expect((await verifyNitro(PROD, { at, ...ANY_IMAGE })).verified).toBe(true);
  });

  it("PCR8 with the signing certificate digest it comes from; they must agree", async () => {
    const NOW = Date.UTC(2026, 0, 1);
    const chain = await makeChain(
      "cleanroom-simulated",
      new Date(NOW - 3_600_000),
      new Date(NOW + 3_600_000),
    );
    const signer = await makeChain("EIF signer", new Date(NOW - 3_600_000), new Date(NOW + 3_600_000));
    const digest = await sha384(signer.leafDer);
    const pcr8 = await pcr8ForSigningCertificate(digest);
    const base0 = sampleDocument(chain, NOW);
    const sample = { ...base0, pcrs: new Map([...base0.pcrs, [8, pcr8]]) };
    const bytes = await signDocument(sample, chain.leafKey);
    const base = { at: new Date(NOW), trustedRoots: [chain.rootDer] };
    const r = await verifyNitro(bytes, { ...base, pcrs: { 8: pcr8 }, signingCertificateDigest: digest });
    expect(r.errors).toEqual([]);
    expect(r.verified).toBe(true);
    // Another image signed by another key: PCR8 differs, refused by policy.
    const other = {
      ...base0,
      pcrs: new Map([...base0.pcrs, [8, await pcr8ForSigningCertificate(await sha384(chain.leafDer))]]),
    };
    const r2 = await verifyNitro(await signDocument(other, chain.leafKey), {
      ...base,
      pcrs: { 8: pcr8 },
      signingCertificateDigest: digest,
    });
    expect(r2.verified).toBe(false);
    expect(r2.checks.find((c) => !c.ok)?.name).toBe("PCR8");
    // A digest without PCR8, or one that does not produce the pinned PCR8: configuration errors.
    await expect(verifyNitro(bytes, { ...base, signingCertificateDigest: digest })).rejects.toThrow(
      PolicyConfigError,
    );
    await expect(
      verifyNitro(bytes, { ...base, pcrs: { 8: pcr8 }, signingCertificateDigest: new Uint8Array(48) }),
    ).rejects.toThrow(PolicyConfigError);
    await expect(
      verifyNitro(bytes, { ...base, pcrs: { 8: pcr8 }, signingCertificateDigest: new Uint8Array(32) }),
    ).rejects.toThrow(PolicyConfigError);
  });
});
