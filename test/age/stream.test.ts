import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCleanroomError } from "../../attestation/errors.js";
import { encodeBase64, parseHeader, type Stanza } from "../../protocol/age/header.js";
import {
  CHUNK_BYTES,
  decryptBytes,
  decryptChunks,
  decryptStream,
  encryptBytes,
  encryptStream,
} from "../../protocol/age/stream-node.js";
import { patternBytes } from "./age-cli.js";
import { craft, party, split } from "./handmade.js";

const K = CHUNK_BYTES;
const SEALED = K + 16;
const CODES = ["ERR_AGE_FORMAT", "ERR_AGE_DECRYPT", "ERR_AGE_NO_IDENTITY"];

async function decryptPieces(pieces: Uint8Array[], identity: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of decryptChunks(pieces, identity)) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Resolves to the error code decryption fails with (fails the test if it succeeds or is untyped). */
async function failureCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (!isCleanroomError(e)) throw e;
    return e.code;
  }
  throw new Error("decryption unexpectedly succeeded");
}

describe("age streaming encryption and decryption", () => {
  it("round-trips random sizes (0..300 KiB), recipient counts and input splits", async () => {
    const parties = await Promise.all([party(), party(), party(), party()]);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300 * 1024 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (size, count, plainCuts, cipherCuts) => {
          const plaintext = patternBytes(size, size + count);
          const chosen = parties.slice(0, count);
          const parts: Uint8Array[] = [];
          for await (const c of encryptStream(
            split(plaintext, plainCuts),
            chosen.map((p) => p.recipient),
          )) {
            parts.push(c);
          }
          const ciphertext = new Uint8Array(Buffer.concat(parts));
          // Size is exactly header + nonce + one tag per chunk (a full final chunk, no empty extra).
          const chunkCount = Math.max(1, Math.ceil(size / K));
          const headerLength = parseHeader(ciphertext).length;
          expect(ciphertext.length).toBe(headerLength + 16 + size + 16 * chunkCount);
          const reader = chosen[chosen.length - 1]!;
          expect(await decryptPieces(split(ciphertext, cipherCuts), reader.identity)).toEqual(plaintext);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("works as node:stream Readables end to end", async () => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(5 * K + 3);
    const source = Readable.from(split(plaintext, [1, 70000, 200000]), { objectMode: false });
    const out = await buffer(decryptStream(encryptStream(source, [recipient]), identity));
    expect(new Uint8Array(out)).toEqual(plaintext);
  });

  it("reports an unknown identity, and refuses bad identity strings", async () => {
    const { recipient } = await party();
    const other = await party();
    const ciphertext = await encryptBytes(patternBytes(10), [recipient]);
    expect(await failureCode(decryptBytes(ciphertext, other.identity))).toBe("ERR_AGE_NO_IDENTITY");
    expect(await failureCode(decryptBytes(ciphertext, []))).toBe("ERR_AGE_NO_IDENTITY");
    expect(await failureCode(decryptBytes(ciphertext, recipient))).toBe("ERR_AGE_FORMAT");
    expect(await failureCode(encryptBytes(patternBytes(1), []))).toBe("ERR_USAGE");
    expect(await failureCode(encryptBytes(patternBytes(1), [other.identity]))).toBe("ERR_AGE_FORMAT");
  });

  it("refuses every single-byte change of a small file, header and payload, with a typed error", async () => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(100);
    const ciphertext = await encryptBytes(plaintext, [recipient]);
    expect(await decryptBytes(ciphertext, identity)).toEqual(plaintext);
    for (let i = 0; i < ciphertext.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const bad = ciphertext.slice();
        bad[i]! ^= flip;
        expect(CODES).toContain(await failureCode(decryptBytes(bad, identity)));
      }
    }
  });

  it("refuses truncation at every chunk boundary and anywhere else", async () => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(3 * K + 100);
    const ciphertext = await encryptBytes(plaintext, [recipient]);
    const payloadStart = parseHeader(ciphertext).length + 16;
    const cuts = [0, 10, payloadStart - 16, payloadStart - 1, payloadStart, payloadStart + 15];
    for (let c = 1; c <= 3; c++) {
      const boundary = payloadStart + c * SEALED;
      cuts.push(boundary - 1, boundary, boundary + 1, boundary + 16);
    }
    cuts.push(ciphertext.length - 1);
    for (const cut of cuts) {
      const truncated = ciphertext.subarray(0, cut);
      expect(CODES).toContain(await failureCode(decryptBytes(truncated, identity)));
      // The stream form errors too, after releasing only authenticated full chunks.
      const released: Uint8Array[] = [];
      const code = await failureCode(
        (async () => {
          for await (const c of decryptStream([truncated], identity)) released.push(c);
        })(),
      );
      expect(CODES).toContain(code);
      const got = new Uint8Array(Buffer.concat(released));
      expect(got).toEqual(plaintext.subarray(0, got.length));
    }
  });

  it("refuses trailing data after the final chunk", async () => {
    const { identity, recipient } = await party();
    for (const size of [0, 5, K]) {
      const ciphertext = await encryptBytes(patternBytes(size), [recipient]);
      for (const extra of [1, 16, SEALED]) {
        const longer = new Uint8Array([...ciphertext, ...new Uint8Array(extra)]);
        expect(await failureCode(decryptBytes(longer, identity))).toBe("ERR_AGE_DECRYPT");
      }
    }
  });

  it("enforces the spec's final-chunk rules on hand-built files", async () => {
    const { identity, recipient } = await party();
    const full = patternBytes(K);
    const ok = (chunks: { plaintext: Uint8Array; last: boolean }[]) => craft(recipient, chunks);
    // Sanity: a correct hand-built file decrypts (so the refusals below are about the rule).
    expect(await decryptBytes(await ok([{ plaintext: full, last: true }]), identity)).toEqual(full);
    expect(await decryptBytes(await ok([{ plaintext: new Uint8Array(0), last: true }]), identity)).toEqual(
      new Uint8Array(0),
    );
    // An empty final chunk after a full one: forbidden (the full chunk must carry the flag).
    const emptyLast = await ok([
      { plaintext: full, last: false },
      { plaintext: new Uint8Array(0), last: true },
    ]);
    expect(await failureCode(decryptBytes(emptyLast, identity))).toBe("ERR_AGE_DECRYPT");
    // No chunk flagged final: truncated.
    const noFinal = await ok([{ plaintext: full, last: false }]);
    expect(await failureCode(decryptBytes(noFinal, identity))).toBe("ERR_AGE_DECRYPT");
    // A short chunk not flagged final, followed by another chunk.
    const shortMiddle = await ok([
      { plaintext: patternBytes(10), last: false },
      { plaintext: patternBytes(10), last: true },
    ]);
    expect(await failureCode(decryptBytes(shortMiddle, identity))).toBe("ERR_AGE_DECRYPT");
    // Two chunks both flagged final.
    const twoFinal = await ok([
      { plaintext: full, last: true },
      { plaintext: patternBytes(3), last: true },
    ]);
    expect(await failureCode(decryptBytes(twoFinal, identity))).toBe("ERR_AGE_DECRYPT");
    // No payload nonce at all.
    const headerOnly = (await ok([{ plaintext: full, last: true }])).subarray(0, -(16 + SEALED));
    expect(await failureCode(decryptBytes(headerOnly, identity))).toBe("ERR_AGE_DECRYPT");
  });

  it("ignores unknown stanzas but refuses malformed X25519 ones", async () => {
    const { identity, recipient } = await party();
    const plaintext = patternBytes(50);
    const chunks = [{ plaintext, last: true }];
    const grease = { args: ["grease-example.org", "x", "!"], body: patternBytes(70) };
    expect(await decryptBytes(await craft(recipient, chunks, [grease]), identity)).toEqual(plaintext);

    const share = encodeBase64(patternBytes(32));
    const body32 = patternBytes(32);
    const malformed: [Stanza, string][] = [
      [{ args: ["X25519"], body: body32 }, "ERR_AGE_FORMAT"],
      [{ args: ["X25519", share, "extra"], body: body32 }, "ERR_AGE_FORMAT"],
      [{ args: ["X25519", encodeBase64(patternBytes(31))], body: body32 }, "ERR_AGE_FORMAT"],
      [{ args: ["X25519", `${share.slice(0, -1)}B`], body: body32 }, "ERR_AGE_FORMAT"],
      [{ args: ["X25519", share], body: patternBytes(33) }, "ERR_AGE_FORMAT"],
      // A low-order share gives an all-zero shared secret, which must abort decryption.
      [{ args: ["X25519", encodeBase64(new Uint8Array(32))], body: body32 }, "ERR_AGE_DECRYPT"],
    ];
    for (const [stanza, code] of malformed) {
      expect(await failureCode(decryptBytes(await craft(recipient, chunks, [stanza]), identity))).toBe(code);
    }
  });

  it("raises only typed errors under random header mutations", async () => {
    const { identity, recipient } = await party();
    const other = await party();
    const ciphertext = await encryptBytes(patternBytes(200), [other.recipient, recipient]);
    const headerLength = parseHeader(ciphertext).length;
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant("insert" as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), byte: fc.constant(0) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
        const bytes = [...ciphertext];
        for (const { kind, at, byte } of mutations) {
          const i = at % headerLength;
          if (kind === "set") bytes[i] = bytes[i] === byte ? byte ^ 0xff : byte;
          else if (kind === "insert") bytes.splice(i, 0, byte);
          else bytes.splice(i, 1);
        }
        const mutated = new Uint8Array(bytes);
        // An insert undone by a delete leaves the file intact; only real changes count.
        fc.pre(Buffer.compare(mutated, ciphertext) !== 0);
        expect(CODES).toContain(await failureCode(decryptBytes(mutated, identity)));
      }),
      { numRuns: 500 },
    );
  });
});
