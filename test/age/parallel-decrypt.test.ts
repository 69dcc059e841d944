/**
 * Parallel payload decryption (protocol/age/parallel-decrypt.ts, decrypt-pool.ts) against the
 * serial path (stream-node.ts): same plaintext, and for every damaged file the same error, code
 * and message, whatever the batch size, worker count and input split.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import { DecryptPool, openBatchHere } from "../../protocol/age/decrypt-pool.js";
import { openHeader } from "../../protocol/age/envelope.js";
import { decryptBatchesWithFileKey } from "../../protocol/age/file-key-decrypt.js";
import { parseHeader } from "../../protocol/age/header.js";
import { decryptBatches, type ParallelDecryptOptions } from "../../protocol/age/parallel-decrypt.js";
import { CHUNK_BYTES, decryptChunks, encryptBytes } from "../../protocol/age/stream-node.js";
import { patternBytes } from "./age-cli.js";
import { craft, party, split } from "./handmade.js";

const K = CHUNK_BYTES;
const SEALED = K + 16;
const QUOTE = 0x22;

type Outcome = { ok: Uint8Array } | { error: string; released: Uint8Array };

/** What a decryption does: its plaintext, or its error (code: message) and what it released first. */
async function outcome(run: () => AsyncIterable<Uint8Array>): Promise<Outcome> {
  const parts: Uint8Array[] = [];
  try {
    for await (const p of run()) parts.push(p);
    return { ok: new Uint8Array(Buffer.concat(parts)) };
  } catch (e) {
    if (!isCleanroomError(e)) throw e;
    return { error: `${e.code}: ${e.message}`, released: new Uint8Array(Buffer.concat(parts)) };
  }
}

async function* bytesOf(batches: AsyncIterable<{ bytes: Uint8Array }>): AsyncGenerator<Uint8Array> {
  for await (const b of batches) yield b.bytes;
}

const serial = (pieces: Uint8Array[], identity: string) => outcome(() => decryptChunks(pieces, identity));
const parallel = (pieces: Uint8Array[], identity: string, o: ParallelDecryptOptions) =>
  outcome(() => bytesOf(decryptBatches(pieces, identity, o)));

/** Parallel must match serial exactly: same plaintext, or same error with a prefix released. */
async function expectSame(
  pieces: Uint8Array[],
  identity: string,
  o: ParallelDecryptOptions,
): Promise<Outcome> {
  const want = await serial(pieces, identity);
  const got = await parallel(pieces, identity, o);
  if ("ok" in want) {
    expect(got).toEqual(want);
    return got;
  }
  expect("error" in got ? got.error : "no error").toBe(want.error);
  // Only authenticated plaintext is released, in order, before the error: a prefix of the serial
  // path's (which releases chunk by chunk, where a batch is all or nothing).
  const released = "released" in got ? got.released : new Uint8Array(0);
  expect(released).toEqual(want.released.subarray(0, released.length));
  return got;
}

describe("parallel age decryption", () => {
  it("gives the serial plaintext for any size, batch size, worker count, input split and ownership", async () => {
    const p = await party();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 9 * K + 100 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.option(fc.array(fc.boolean(), { maxLength: 9 })),
        async (size, batchChunks, workers, cuts, shared) => {
          const plaintext = patternBytes(size, size);
          const ct = await encryptBytes(plaintext, [p.recipient]);
          // Owned input (shared !== null): each piece its own buffer (it may move to a worker), or
          // a Buffer viewing part of a larger one (copied: a Buffer's slice() would be a view, so a
          // lazy copy would move the owner's memory). Otherwise views of the file, never moved.
          const pieces =
            shared === null
              ? split(ct, cuts)
              : split(ct, cuts).map((piece, i) =>
                  shared[i]
                    ? Buffer.concat([piece, Buffer.alloc(3)], piece.length + 3).subarray(0, piece.length)
                    : new Uint8Array(piece),
                );
          const got = await parallel(pieces, p.identity, {
            workers,
            batchChunks,
            ownsInput: shared !== null,
          });
          expect(got).toEqual({ ok: plaintext });
          // A view into a larger buffer is never taken from its owner.
          pieces.forEach((piece, i) => {
            if (shared === null || shared[i])
              expect(piece.buffer.byteLength, `piece ${i}`).toBeGreaterThan(0);
          });
        },
      ),
      { numRuns: 16 },
    );
  }, 180_000);

  it("without ownership leaves every input piece as it was; with it, moves whole ones to workers", async () => {
    const p = await party();
    const plaintext = patternBytes(8 * K + 9, 5);
    const ct = await encryptBytes(plaintext, [p.recipient]);
    const own = () =>
      split(ct, [200, 3 * SEALED, 3 * SEALED + 700, 6 * SEALED]).map((x) => new Uint8Array(x));
    const kept = own();
    expect(await parallel(kept, p.identity, { workers: 2, batchChunks: 2 })).toEqual({ ok: plaintext });
    expect(kept.every((x) => x.buffer.byteLength > 0)).toBe(true);
    const moved = own();
    expect(await parallel(moved, p.identity, { workers: 2, batchChunks: 2, ownsInput: true })).toEqual({
      ok: plaintext,
    });
    // The header's piece is read here; later whole pieces went to a worker (detached here).
    expect(moved.slice(1).some((x) => x.buffer.byteLength === 0)).toBe(true);
  }, 60_000);

  it("refuses damage to owned input exactly as the serial path does", async () => {
    const p = await party();
    const ct = await encryptBytes(patternBytes(6 * K + 100), [p.recipient]);
    const payloadStart = parseHeader(ct).length + 16;
    const o = { workers: 2, batchChunks: 1, ownsInput: true };
    for (const cut of [
      payloadStart + 15,
      payloadStart + 2 * SEALED,
      payloadStart + 3 * SEALED + 1,
      ct.length - 1,
    ]) {
      const pieces = (bytes: Uint8Array) =>
        split(bytes, [payloadStart + 5, payloadStart + SEALED + 9]).map((x) => new Uint8Array(x));
      const want = await serial(pieces(ct.subarray(0, cut)), p.identity);
      const got = await parallel(pieces(ct.subarray(0, cut)), p.identity, o);
      expect("error" in got && got.error, `cut ${cut}`).toBe("error" in want && want.error);
    }
    const flipped = new Uint8Array(ct);
    flipped[payloadStart + 2 * SEALED + 40]! ^= 1;
    const got = await parallel(
      split(flipped, [payloadStart + SEALED]).map((x) => new Uint8Array(x)),
      p.identity,
      o,
    );
    expect("error" in got && got.error).toMatch(/^ERR_AGE_DECRYPT/);
  }, 60_000);

  it("counts a byte value in each batch, in the workers", async () => {
    const p = await party();
    const plaintext = patternBytes(5 * K + 77, 3);
    const ct = await encryptBytes(plaintext, [p.recipient]);
    let counted = 0;
    let batches = 0;
    for await (const b of decryptBatches([ct], p.identity, {
      workers: 2,
      batchChunks: 2,
      countByte: QUOTE,
    })) {
      expect(b.count).toBe(b.bytes.filter((x) => x === QUOTE).length);
      counted += b.count;
      batches++;
    }
    expect(batches).toBe(3);
    expect(counted).toBe(plaintext.filter((x) => x === QUOTE).length);
    expect(counted).toBeGreaterThan(0);
  });

  it("refuses truncation anywhere exactly as the serial path does", async () => {
    const p = await party();
    const ct = await encryptBytes(patternBytes(6 * K + 100), [p.recipient]);
    const payloadStart = parseHeader(ct).length + 16;
    const cuts = [0, 10, payloadStart - 1, payloadStart, payloadStart + 15, ct.length - 1];
    for (let c = 1; c <= 6; c++) {
      const boundary = payloadStart + c * SEALED;
      cuts.push(boundary - 1, boundary, boundary + 1, boundary + 16);
    }
    for (const cut of cuts) {
      // Batches of one chunk: every chunk boundary is a batch boundary too.
      const got = await expectSame([ct.subarray(0, cut)], p.identity, { workers: 2, batchChunks: 1 });
      expect("error" in got, `cut ${cut}`).toBe(true);
    }
  }, 180_000);

  it("refuses reordered, duplicated and dropped chunks, within a batch and across batches", async () => {
    const p = await party();
    const ct = await encryptBytes(patternBytes(6 * K + 5), [p.recipient]);
    const start = parseHeader(ct).length + 16;
    const chunk = (i: number) =>
      ct.subarray(start + i * SEALED, Math.min(ct.length, start + (i + 1) * SEALED));
    const file = (order: number[]) =>
      new Uint8Array(Buffer.concat([ct.subarray(0, start), ...order.map((i) => chunk(i))]));
    const variants = [
      [1, 0, 2, 3, 4, 5, 6], // swapped inside the first batch (batchChunks 2)
      [0, 1, 3, 2, 4, 5, 6], // swapped across batches
      [0, 1, 2, 3, 4, 6, 5], // the final chunk moved
      [0, 1, 1, 2, 3, 4, 5, 6], // a chunk repeated
      [0, 1, 2, 4, 5, 6], // a middle chunk dropped
      [0, 1, 2, 3, 4, 5, 6, 6], // the final chunk repeated
    ];
    expect(await parallel([file([0, 1, 2, 3, 4, 5, 6])], p.identity, { workers: 2, batchChunks: 2 })).toEqual(
      await serial([ct], p.identity),
    );
    for (const order of variants) {
      const got = await expectSame([file(order)], p.identity, { workers: 2, batchChunks: 2 });
      expect("error" in got && got.error, order.join()).toMatch(/^ERR_AGE_DECRYPT/);
    }
  }, 180_000);

  it("enforces the final-chunk rules on hand-built files as the serial path does", async () => {
    const p = await party();
    const full = patternBytes(K);
    const files = await Promise.all([
      craft(p.recipient, [{ plaintext: new Uint8Array(0), last: true }]), // empty file: fine
      craft(p.recipient, [
        { plaintext: full, last: false },
        { plaintext: full, last: false },
        { plaintext: new Uint8Array(0), last: true },
      ]), // an empty final chunk after full ones
      craft(p.recipient, [
        { plaintext: full, last: false },
        { plaintext: full, last: false },
      ]), // no chunk flagged final
      craft(p.recipient, [
        { plaintext: full, last: true },
        { plaintext: full, last: false },
        { plaintext: patternBytes(3), last: true },
      ]), // a full chunk flagged final before others
      craft(p.recipient, [
        { plaintext: patternBytes(10), last: false },
        { plaintext: patternBytes(10), last: true },
      ]), // a short chunk not flagged final
    ]);
    const codes: string[] = [];
    for (const f of files) {
      const got = await expectSame([f], p.identity, { workers: 1, batchChunks: 1 });
      codes.push("ok" in got ? "ok" : got.error.split(":")[0]!);
    }
    expect(codes).toEqual(["ok", ...Array(4).fill("ERR_AGE_DECRYPT")]);
  }, 180_000);

  it("refuses a changed byte in any batch, and trailing bytes, as the serial path does", async () => {
    const p = await party();
    const ct = await encryptBytes(patternBytes(4 * K + 9), [p.recipient]);
    const start = parseHeader(ct).length + 16;
    for (const at of [start, start + SEALED + 3, start + 3 * SEALED - 1, ct.length - 1]) {
      const bad = ct.slice();
      bad[at]! ^= 1;
      const got = await expectSame([bad], p.identity, { workers: 2, batchChunks: 1 });
      expect("error" in got && got.error).toBe("ERR_AGE_DECRYPT: payload: chunk authentication failed");
    }
    for (const extra of [1, 16, SEALED]) {
      const longer = new Uint8Array(Buffer.concat([ct, new Uint8Array(extra)]));
      await expectSame([longer], p.identity, { workers: 2, batchChunks: 2 });
    }
  }, 180_000);

  it("fails at a failing input's position: after the batches before it, or at a bad chunk first", async () => {
    const p = await party();
    const ct = await encryptBytes(patternBytes(8 * K), [p.recipient]);
    const start = parseHeader(ct).length + 16;
    const bad = ct.slice();
    bad[start + 2 * SEALED + 5]! ^= 1;
    for (const [file, at] of [
      [ct, start + 5 * SEALED + 3],
      [bad, start + 5 * SEALED + 3],
      [ct, start + 1],
    ] as const) {
      const failing = () => {
        const pieces = split(file.subarray(0, at), [start + SEALED, start + 4 * SEALED]);
        return (async function* () {
          yield* pieces;
          throw new UsageError("input failed");
        })();
      };
      const want = await outcome(() => decryptChunks(failing(), p.identity));
      const got = await outcome(() =>
        bytesOf(decryptBatches(failing(), p.identity, { workers: 2, batchChunks: 2 })),
      );
      expect("error" in got && got.error).toBe("error" in want && want.error);
      expect(got).toMatchObject({ released: expect.any(Uint8Array) });
    }
  }, 180_000);

  it("opens a file granted by its key, and refuses another file's key at the header MAC", async () => {
    const p = await party();
    const plaintext = patternBytes(3 * K + 1);
    const a = await encryptBytes(plaintext, [p.recipient]);
    const b = await encryptBytes(plaintext, [p.recipient]);
    const keyA = await openHeader(parseHeader(a).header, [p.identity]);
    const keyB = await openHeader(parseHeader(b).header, [p.identity]);
    const run = (ct: Uint8Array, key: Uint8Array) =>
      outcome(() => bytesOf(decryptBatchesWithFileKey([ct], key, { workers: 2, batchChunks: 1 })));
    expect(await run(a, keyA)).toEqual({ ok: plaintext });
    expect(await run(b, keyA)).toEqual({
      error: "ERR_AGE_DECRYPT: header: MAC mismatch",
      released: new Uint8Array(0),
    });
    // The same header with another file's payload (same owner, same plaintext): the payload key differs.
    const start = parseHeader(a).length;
    const spliced = new Uint8Array(Buffer.concat([a.subarray(0, start), b.subarray(parseHeader(b).length)]));
    expect(await run(spliced, keyA)).toMatchObject({
      error: "ERR_AGE_DECRYPT: payload: chunk authentication failed",
    });
    expect(keyB).not.toEqual(keyA);
  });
});

describe("DecryptPool", () => {
  it("opens batches on worker threads exactly as on the calling thread, and reports a bad tag", async () => {
    const key = createSecretKey(randomBytes(32));
    const plain = patternBytes(3 * K + 10, 9);
    const sealed: Buffer[] = [];
    for (let i = 0; i * K < plain.length; i++) {
      const iv = Buffer.alloc(12);
      iv.writeUInt32BE(i + 5, 7);
      iv[11] = (i + 1) * K >= plain.length ? 1 : 0;
      const c = createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 });
      sealed.push(c.update(plain.subarray(i * K, (i + 1) * K)), c.final(), c.getAuthTag());
    }
    const all = Buffer.concat(sealed);
    const owned = () => {
      const b = new ArrayBuffer(all.length + 7);
      all.copy(Buffer.from(b));
      return b;
    };
    const here = openBatchHere(createDecipheriv, key, Buffer.from(owned(), 0, all.length), 5, true, QUOTE);
    expect(new Uint8Array(here.plaintext)).toEqual(plain);
    const pool = new DecryptPool(key, 2);
    try {
      const there = await pool.open(owned(), all.length, 5, true, QUOTE);
      expect(new Uint8Array(there.plaintext)).toEqual(plain);
      expect(there.count).toBe(here.count);
      // Another first index, or the final flag missing: every tag fails.
      await expect(pool.open(owned(), all.length, 6, true, -1)).rejects.toThrow(
        "chunk authentication failed",
      );
      await expect(pool.open(owned(), all.length, 5, false, -1)).rejects.toThrow(
        "chunk authentication failed",
      );
      expect(() => pool.open(new ArrayBuffer(8), 9, 5, true, -1)).toThrow(RangeError);
    } finally {
      await pool.close();
    }
  });
});
