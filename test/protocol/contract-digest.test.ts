import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sha256, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import { canonicalBytes, canonicalDigest, contractDigest } from "../../protocol/contract/digest.js";
import { makeContract, makeParty } from "./fixtures.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Rebuild every object with its keys in a shuffled order decided by `seed`. */
function reorder(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => reorder(x, seed + i));
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    const shuffled = keys
      .map((k, i) => [k, Math.sin(seed * 7919 + i * 104729)] as const)
      .sort((a, b) => a[1] - b[1])
      .map(([k]) => k);
    return Object.fromEntries(shuffled.map((k) => [k, reorder((v as Record<string, unknown>)[k], seed + 1)]));
  }
  return v;
}

describe("canonical bytes and digest", () => {
  it("follows RFC 8785 key order and number formatting", () => {
    // Keys sort by UTF-16 code units; numbers use the ECMAScript shortest form.
    expect(text(canonicalBytes({ b: [1e21, 0.1, -0, 1.5e-7], a: "é", "\u20ac": 1, "\r": 2 }))).toBe(
      '{"\\r":2,"a":"é","b":[1e+21,0.1,0,1.5e-7],"€":1}',
    );
  });

  it("refuses values that have no canonical form", () => {
    for (const v of [Number.NaN, { x: Number.POSITIVE_INFINITY }, "\ud800", undefined]) {
      expect(() => canonicalBytes(v)).toThrow(UsageError);
    }
  });

  it("contract digest is SHA-256 of the canonical bytes, hex and bytes agree", async () => {
    const c = makeContract([await makeParty("acme"), await makeParty("news")]);
    const d = await contractDigest(c);
    expect(d.hex).toMatch(/^[0-9a-f]{64}$/);
    expect(d.hex).toBe(toHex(d.bytes));
    expect(d.bytes).toEqual(await sha256(canonicalBytes(c)));
  });

  it("property: stable under key reordering and whitespace", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue(),
        fc.integer(),
        fc.integer({ min: 0, max: 4 }),
        async (v, seed, indent) => {
          const reparsed = JSON.parse(JSON.stringify(reorder(v, seed), null, indent));
          expect((await canonicalDigest(reparsed)).hex).toBe((await canonicalDigest(v)).hex);
        },
      ),
      { numRuns: 300 },
    );
  });
});
