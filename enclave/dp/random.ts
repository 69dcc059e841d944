/**
 * Uniform randomness for the DP samplers, on integers only: uniform integers in [0, n) by
 * rejection sampling (no modulo bias) and Bernoulli(num/den) for exact rational probabilities.
 * No Math.random, no floating point. The byte source is injectable: production uses the
 * operating system's CSPRNG (node:crypto), tests a deterministic ChaCha20 keystream.
 */
import { createCipheriv, createHash, randomFillSync } from "node:crypto";
import { DpPolicyError } from "./errors.js";

/** Fills buffers with uniformly random bytes. */
export interface ByteSource {
  fill(out: Uint8Array): void;
}

/** The randomness the samplers consume; tests may substitute their own (e.g. to enumerate paths). */
export interface Rng {
  /** Uniform integer in [0, n); n >= 1. */
  below(n: bigint): bigint;
  /** True with probability exactly num/den (0 <= num, 0 < den; num >= den is always true). */
  bernoulli(num: bigint, den: bigint): boolean;
}

/** The OS CSPRNG. */
export const cryptoByteSource: ByteSource = { fill: (out) => void randomFillSync(out) };

/**
 * A deterministic stream for tests and reproducible simulations: the ChaCha20 keystream under
 * key SHA-256(seed), zero nonce. Never use it to noise real results.
 */
export function seededByteSource(seed: string | Uint8Array): ByteSource {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("chacha20", key, new Uint8Array(16));
  return { fill: (out) => out.set(cipher.update(new Uint8Array(out.length))) };
}

const POOL_SIZE = 4096;

/** Rng over a byte source, drawing bytes from a pool so small draws stay cheap. */
export class ByteRng implements Rng {
  readonly #source: ByteSource;
  readonly #pool = new Uint8Array(POOL_SIZE);
  #next = POOL_SIZE;

  constructor(source: ByteSource = cryptoByteSource) {
    this.#source = source;
  }

  #byte(): number {
    if (this.#next === POOL_SIZE) {
      this.#source.fill(this.#pool);
      this.#next = 0;
    }
    return this.#pool[this.#next++]!;
  }

  below(n: bigint): bigint {
    if (n < 1n) throw new DpPolicyError("uniform range must be positive");
    if (n === 1n) return 0n;
    // Draw just enough bits to cover n - 1 and reject values >= n: each accepted value is uniform.
    if (n <= 0x1_0000_0000n) {
      const limit = Number(n);
      const bits = 32 - Math.clz32(limit - 1);
      const span = 2 ** bits;
      const bytes = Math.ceil(bits / 8);
      for (;;) {
        let v = 0;
        for (let i = 0; i < bytes; i++) v = v * 256 + this.#byte();
        v %= span; // span divides 256^bytes, so this keeps v uniform on [0, span)
        if (v < limit) return BigInt(v);
      }
    }
    const bits = (n - 1n).toString(2).length;
    const mask = (1n << BigInt(bits)) - 1n;
    const bytes = Math.ceil(bits / 8);
    for (;;) {
      let v = 0n;
      for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(this.#byte());
      v &= mask;
      if (v < n) return v;
    }
  }

  bernoulli(num: bigint, den: bigint): boolean {
    if (den <= 0n || num < 0n) throw new DpPolicyError("bernoulli parameter out of range");
    if (num === 0n) return false;
    if (num >= den) return true;
    return this.below(den) < num;
  }
}

/** An Rng on the OS CSPRNG: the one results are noised with. */
export function cryptoRng(): Rng {
  return new ByteRng(cryptoByteSource);
}

/** A reproducible Rng for tests. */
export function seededRng(seed: string | Uint8Array): Rng {
  return new ByteRng(seededByteSource(seed));
}
