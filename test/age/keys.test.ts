import { bech32 } from "@scure/base";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeIdentity,
  decodeRecipient,
  encodeIdentity,
  encodeRecipient,
  generateIdentity,
  identityToRecipient,
} from "../../protocol/age/keys.js";

// The X25519 example pair printed in the C2SP age spec (age.md, "The X25519 recipient type").
const SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
const SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

const FORMAT = { code: "ERR_AGE_FORMAT" };

describe("age X25519 key strings", () => {
  it("derives the spec's example recipient from the spec's example identity", async () => {
    expect(decodeIdentity(SPEC_IDENTITY)).toEqual(new Uint8Array(32).fill(0x42));
    expect(await identityToRecipient(SPEC_IDENTITY)).toBe(SPEC_RECIPIENT);
  });

  it("round-trips any 32-byte key through both encodings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        const id = encodeIdentity(key);
        const rcpt = encodeRecipient(key);
        expect(id.startsWith("AGE-SECRET-KEY-1")).toBe(true);
        expect(rcpt.startsWith("age1")).toBe(true);
        expect(decodeIdentity(id)).toEqual(key);
        expect(decodeRecipient(rcpt)).toEqual(key);
      }),
    );
  });

  it("generates distinct identities", () => {
    const ids = new Set(Array.from({ length: 20 }, generateIdentity));
    expect(ids.size).toBe(20);
  });

  it("refuses the wrong letter case, type, checksum or length", () => {
    expect(() => decodeIdentity(SPEC_IDENTITY.toLowerCase())).toThrow(expect.objectContaining(FORMAT));
    expect(() => decodeRecipient(SPEC_RECIPIENT.toUpperCase())).toThrow(expect.objectContaining(FORMAT));
    expect(() => decodeIdentity(SPEC_RECIPIENT)).toThrow(expect.objectContaining(FORMAT));
    expect(() => decodeRecipient(SPEC_IDENTITY)).toThrow(expect.objectContaining(FORMAT));
    const badChecksum = `${SPEC_RECIPIENT.slice(0, -1)}${SPEC_RECIPIENT.endsWith("q") ? "p" : "q"}`;
    expect(() => decodeRecipient(badChecksum)).toThrow(expect.objectContaining(FORMAT));
    const short = bech32.encode("age", bech32.toWords(new Uint8Array(31)));
    expect(() => decodeRecipient(short)).toThrow(expect.objectContaining(FORMAT));
    expect(() => decodeRecipient("")).toThrow(expect.objectContaining(FORMAT));
    expect(() => encodeRecipient(new Uint8Array(33))).toThrow(expect.objectContaining(FORMAT));
  });
});
