import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteRng, type ByteSource, cryptoRng, seededByteSource, seededRng } from "../../enclave/dp/random.js";

/** A source whose stream starts with `first` and continues with zeros. */
function scripted(first: number[]): ByteSource {
  let given = false;
  return {
    fill(out) {
      out.fill(0);
      if (!given) out.set(first);
      given = true;
    },
  };
}

describe("uniform integers by rejection", () => {
  it.each([2, 3, 5, 7, 100, 200, 255, 256])("below(%i): every first byte maps without modulo bias", (n) => {
    const span = 2 ** Math.ceil(Math.log2(n));
    const hist = new Array<number>(n).fill(0);
    for (let b = 0; b < 256; b++) {
      const v = Number(new ByteRng(scripted([b])).below(BigInt(n)));
      // An accepted byte gives its low bits; a rejected one retries and reads the next byte (0).
      const low = b % span;
      expect(v).toBe(low < n ? low : 0);
      if (low < n) hist[v]!++;
    }
    expect(new Set(hist).size).toBe(1);
  });

  it("below(1000) over all two-byte draws is exactly uniform on acceptance", () => {
    const hist = new Map<number, number>();
    for (let b0 = 0; b0 < 256; b0++) {
      for (let b1 = 0; b1 < 256; b1++) {
        const v = (b0 * 256 + b1) % 1024;
        if (v >= 1000) continue;
        const got = Number(new ByteRng(scripted([b0, b1])).below(1000n));
        expect(got).toBe(v);
        hist.set(got, (hist.get(got) ?? 0) + 1);
      }
    }
    expect(hist.size).toBe(1000);
    expect(new Set(hist.values())).toEqual(new Set([64]));
  });

  it("below(2^70 + 3) stays in range (bigint path)", () => {
    const rng = seededRng("big");
    const n = 2n ** 70n + 3n;
    let high = false;
    for (let i = 0; i < 200; i++) {
      const v = rng.below(n);
      expect(v >= 0n && v < n).toBe(true);
      if (v >= 2n ** 69n) high = true;
    }
    expect(high).toBe(true);
  });

  it("Bernoulli(3/7) is exactly 3/7 over the accepted first bytes", () => {
    let accepted = 0;
    let hits = 0;
    for (let b = 0; b < 256; b++) {
      if (b % 8 >= 7) continue;
      accepted++;
      if (new ByteRng(scripted([b])).bernoulli(3n, 7n)) hits++;
    }
    expect(hits * 7).toBe(accepted * 3);
  });

  it("Bernoulli edge cases draw nothing and are certain", () => {
    const rng = new ByteRng({ fill: () => expect.unreachable("no bytes needed") });
    expect(rng.bernoulli(0n, 5n)).toBe(false);
    expect(rng.bernoulli(5n, 5n)).toBe(true);
    expect(rng.below(1n)).toBe(0n);
    expect(() => rng.below(0n)).toThrow(expect.objectContaining({ code: "ERR_DP_POLICY" }));
    expect(() => rng.bernoulli(1n, 0n)).toThrow(expect.objectContaining({ code: "ERR_DP_POLICY" }));
  });
});

describe("sources", () => {
  const draw = (rng: { below(n: bigint): bigint }) => Array.from({ length: 64 }, () => rng.below(1_000_003n));

  it("a seed reproduces its stream; another seed does not", () => {
    expect(draw(seededRng("seed-a"))).toEqual(draw(seededRng("seed-a")));
    expect(draw(seededRng("seed-a"))).not.toEqual(draw(seededRng("seed-b")));
  });

  it("the seeded stream is the ChaCha20 keystream: chunking does not change it", () => {
    const whole = new Uint8Array(100);
    seededByteSource("k").fill(whole);
    const parts = seededByteSource("k");
    const a = new Uint8Array(37);
    const b = new Uint8Array(63);
    parts.fill(a);
    parts.fill(b);
    expect([...a, ...b]).toEqual([...whole]);
  });

  it("the crypto RNG gives distinct streams", () => {
    expect(draw(cryptoRng())).not.toEqual(draw(cryptoRng()));
  });

  it("property: below(n) is in [0, n) for any n", () => {
    const rng = seededRng("prop");
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n ** 200n }), (n) => {
        const v = rng.below(n);
        return v >= 0n && v < n;
      }),
    );
  });
});
