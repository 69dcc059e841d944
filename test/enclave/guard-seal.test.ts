import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openReleased, SealShares, sealedDigest, sealReleased } from "../../enclave/guard-seal.js";
import { DifferencingGuard, type PeopleSets } from "../../enclave/sql/differencing.js";

const DIGEST = "ab".repeat(32);
const set = (from: number, to: number) =>
  BigUint64Array.from({ length: to - from }, (_, i) => BigInt(from + i) * 7919n);
const rows: PeopleSets[] = [[set(0, 100), set(50, 60)], [set(1000, 1200)]];

function sharesOf(parties: Record<string, Uint8Array>): SealShares {
  const shares = new SealShares();
  for (const [p, s] of Object.entries(parties)) shares.record(p, s);
  return shares;
}

describe("sealed guard history", () => {
  const a = randomBytes(32);
  const b = randomBytes(32);
  const key = sharesOf({ acme: a, news: b }).key(DIGEST, "q", ["news", "acme"])!;

  it("round-trips the people sets of a run under the owners' key", () => {
    const blob = sealReleased(key, DIGEST, "q", rows);
    expect(openReleased(key, DIGEST, "q", blob)).toEqual(rows);
    expect(openReleased(key, DIGEST, "q", sealReleased(key, DIGEST, "q", []))).toEqual([]);
    expect(sealedDigest(blob)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("needs every owner's share, and each share changes the key", () => {
    expect(sharesOf({ acme: a }).key(DIGEST, "q", ["acme", "news"])).toBeUndefined();
    const other = sharesOf({ acme: a, news: randomBytes(32) }).key(DIGEST, "q", ["acme", "news"])!;
    const blob = sealReleased(key, DIGEST, "q", rows);
    expect(openReleased(other, DIGEST, "q", blob)).toBeUndefined();
    // The same shares give the same key in a new instance, in any order of grants.
    expect(sharesOf({ news: b, acme: a }).key(DIGEST, "q", ["acme", "news"])).toEqual(key);
  });

  it("binds a blob to its contract and query, and detects any changed byte", () => {
    const blob = sealReleased(key, DIGEST, "q", rows);
    expect(openReleased(key, "cd".repeat(32), "q", blob)).toBeUndefined();
    expect(openReleased(key, DIGEST, "other", blob)).toBeUndefined();
    for (const at of [0, 5, 20, blob.length - 1]) {
      const bad = Uint8Array.from(blob);
      bad[at]! ^= 1;
      expect(openReleased(key, DIGEST, "q", bad)).toBeUndefined();
    }
    expect(openReleased(key, DIGEST, "q", blob.subarray(0, blob.length - 1))).toBeUndefined();
  });

  it("refuses a party's second grant with another share", () => {
    const shares = sharesOf({ acme: a });
    shares.record("acme", Uint8Array.from(a));
    expect(() => shares.record("acme", b)).toThrow(expect.objectContaining({ code: "ERR_SEAL_SHARE" }));
    expect(() => shares.record("news", randomBytes(31))).toThrow(
      expect.objectContaining({ code: "ERR_SEAL_SHARE" }),
    );
  });

  it("a restored history guards the next release as if it had never been lost", () => {
    const before = new DifferencingGuard();
    expect(before.release("q", [[set(0, 100)]], 10)).toEqual([true]);
    const blob = sealReleased(key, DIGEST, "q", [[set(0, 100)]]);
    const after = new DifferencingGuard();
    after.restore("q", openReleased(key, DIGEST, "q", blob)!);
    expect(after.release("q", [[set(0, 105)]], 10)).toEqual([false]); // 5 people apart
    expect(after.release("q", [[set(0, 110)]], 10)).toEqual([true]); // 10 apart
    // A history that does not fit the guard's bound freezes the query instead.
    const small = new DifferencingGuard(50);
    small.restore("q", [[set(0, 100)]]);
    expect(small.release("q", [[set(500, 600)]], 10)).toEqual([false]);
  });
});
