/**
 * An upload's ciphertext as the load reads it (enclave/ciphertext-stream.ts): every piece in order
 * and counted, a bounded queue over a request body, the body's failure after what it delivered,
 * and a body left early destroyed.
 */
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { ciphertextPieces } from "../../enclave/ciphertext-stream.js";

const piece = (i: number, n = 100) => Buffer.alloc(n, i & 0xff);

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const p of source) out.push(p);
  return Buffer.concat(out);
}

describe("ciphertextPieces", () => {
  it("passes an iterable's pieces through in order, counting each", async () => {
    const pieces = [piece(1), piece(2, 7), piece(3, 0)];
    let counted = 0;
    const iterable = (async function* () {
      yield* pieces;
    })();
    const got = await collect(ciphertextPieces(iterable, (n) => (counted += n)));
    expect(got).toEqual(Buffer.concat(pieces));
    expect(counted).toBe(107);
  });

  it("reads a body's pieces in order, counting each", async () => {
    const pieces = Array.from({ length: 50 }, (_, i) => piece(i, 10 + i));
    let counted = 0;
    const got = await collect(ciphertextPieces(Readable.from(pieces), (n) => (counted += n)));
    expect(got).toEqual(Buffer.concat(pieces));
    expect(counted).toBe(got.length);
  });

  it("pauses the body while its queue is full", async () => {
    let produced = 0;
    const body = new Readable({
      read() {
        this.push(produced < 200 ? piece(produced++) : null);
      },
    });
    let received = 0;
    let consumed = 0;
    let most = 0;
    for await (const p of ciphertextPieces(body, (n) => (received += n), 1000)) {
      consumed += p.length;
      most = Math.max(most, received - consumed);
      if (consumed % 2000 === 0) await sleep(1);
    }
    expect(consumed).toBe(200 * 100);
    // Paused at 1 000 queued bytes: at most the piece that crossed the mark arrives beyond it.
    expect(most).toBeLessThanOrEqual(1000 + 100);
  });

  it("fails with the body's error after the pieces it delivered", async () => {
    const failure = new Error("connection reset");
    const body = new Readable({ read() {} });
    const got: Uint8Array[] = [];
    const reading = (async () => {
      for await (const p of ciphertextPieces(body, () => undefined)) got.push(p);
    })();
    body.push(piece(1));
    body.push(piece(2));
    await sleep(5);
    body.destroy(failure);
    await expect(reading).rejects.toBe(failure);
    expect(Buffer.concat(got)).toEqual(Buffer.concat([piece(1), piece(2)]));
  });

  it("fails when the body closes before its end", async () => {
    const body = new Readable({ read() {} });
    const reading = collect(ciphertextPieces(body, () => undefined));
    body.push(piece(1));
    await sleep(5);
    body.destroy();
    await expect(reading).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("destroys a body left before its end, and refuses text", async () => {
    const body = Readable.from([piece(1), piece(2), piece(3)]);
    for await (const _ of ciphertextPieces(body, () => undefined)) break;
    expect(body.destroyed).toBe(true);
    const text = Readable.from(["not bytes"]);
    await expect(collect(ciphertextPieces(text, () => undefined))).rejects.toThrow(TypeError);
  });
});
