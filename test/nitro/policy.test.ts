import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { PolicyError, UsageError } from "../../attestation/errors.js";
import {
  checkNitroPolicy,
  evaluateNitroPolicy,
  parseNitro,
  verifyNitro,
} from "../../attestation/nitro/index.js";
import { timestampOf, vectors } from "./helpers.js";

const PROD = vectors.find((v) => v.name.startsWith("evervault-2022-10-13"))!.bytes;
const DEBUG = vectors.find((v) => v.name.startsWith("evervault-2022-10-12"))!.bytes;
const doc = parseNitro(PROD).document;
const at = timestampOf(PROD);
const pcrHex = (i: number) => toHex(doc.pcrs.get(i)!);
const failing = async (opts: Parameters<typeof evaluateNitroPolicy>[1], d = doc) =>
  (await evaluateNitroPolicy(d, opts, at)).filter((c) => !c.ok).map((c) => c.name);

describe("Nitro policy", () => {
  it("accepts the expected PCR0/1/2/3/4/8 (hex or bytes, record or map) and the exact nonce", async () => {
    const opts = {
      pcrs: { 0: pcrHex(0), 1: doc.pcrs.get(1)!, 2: pcrHex(2), 3: pcrHex(3), 4: pcrHex(4), 8: pcrHex(8) },
      nonce: toHex(doc.nonce!),
    };
    expect(await failing(opts)).toEqual([]);
    expect(await failing({ pcrs: new Map([[0, pcrHex(0)]]) })).toEqual([]);
    const r = await verifyNitro(PROD, { at, ...opts });
    expect(r.verified).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["PCR0", "PCR1", "PCR8", "nonce"]));
    expect(r.claims.pcrs).toMatchObject({ "0": pcrHex(0) });
    expect(r.claims.nonce).toBe(toHex(doc.nonce!));
    expect(r.claims.publicKey).toBeNull();
  });

  it("refuses a wrong PCR, a PCR the document lacks, and reports each failing check", async () => {
    const wrong = `${pcrHex(0).slice(0, -2)}00`;
    expect(await failing({ pcrs: { 0: wrong, 1: pcrHex(1), 20: pcrHex(1) } })).toEqual(["PCR0", "PCR20"]);
    const r = await verifyNitro(PROD, { at, pcrs: { 0: wrong } });
    expect(r.verified).toBe(false);
    expect(r.errors).toEqual([{ code: "ERR_POLICY", message: "policy: PCR0 does not match" }]);
    await expect(checkNitroPolicy(doc, { pcrs: { 0: wrong } }, at)).rejects.toThrow(PolicyError);
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
    expect((await evaluateNitroPolicy(doc, { maxAgeMs: 5 * 60_000 }, later)).find((c) => !c.ok)?.name).toBe(
      "document age",
    );
    expect((await evaluateNitroPolicy(doc, { maxAgeMs: 11 * 60_000 }, later)).every((c) => c.ok)).toBe(true);
  });

  it("module id pattern", async () => {
    expect(await failing({ moduleId: /^i-[0-9a-f]{17}-enc[0-9a-f]{16}$/ })).toEqual([]);
    expect(await failing({ moduleId: /^i-ffff/ })).toEqual(["module id"]);
  });

  it("malformed options are a UsageError, thrown even by verifyNitro", async () => {
    await expect(evaluateNitroPolicy(doc, { nonce: "zz" }, at)).rejects.toThrow(UsageError);
    await expect(evaluateNitroPolicy(doc, { pcrs: { 40: "00" } }, at)).rejects.toThrow(UsageError);
    await expect(verifyNitro(PROD, { at, maxAgeMs: -1 })).rejects.toThrow(UsageError);
  });
});
