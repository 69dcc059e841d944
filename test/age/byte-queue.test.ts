/** ByteQueue (protocol/age/byte-queue.ts): records taken across pieces, copied or as views. */
import { describe, expect, it } from "vitest";
import { ByteQueue } from "../../protocol/age/byte-queue.js";

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe("ByteQueue", () => {
  it("takes views in order, marking the ones that end a piece owning its whole buffer", () => {
    const q = new ByteQueue();
    const whole = bytes(0, 10);
    const big = bytes(10, 20);
    const part = big.subarray(0, 6); // a piece that is only part of its buffer
    q.push(whole);
    q.push(part);
    q.push(bytes(16, 4));
    expect(q.length).toBe(20);
    const first = q.takeViews(7);
    expect(first.map((v) => [Array.from(v.view), v.whole])).toEqual([[Array.from(bytes(0, 7)), false]]);
    const second = q.takeViews(9);
    expect(second.map((v) => [Array.from(v.view), v.whole])).toEqual([
      [Array.from(bytes(7, 3)), true],
      [Array.from(bytes(10, 6)), false],
    ]);
    // Views, not copies.
    expect(second[0]!.view.buffer).toBe(whole.buffer);
    const last = q.takeViews(4);
    expect(last.map((v) => v.whole)).toEqual([true]);
    expect(q.length).toBe(0);
    expect(() => q.takeViews(1)).toThrow(RangeError);
  });

  it("copies a record that spans pieces into the scratch buffer, and returns a view otherwise", () => {
    const q = new ByteQueue();
    const a = bytes(0, 5);
    q.push(a);
    q.push(bytes(5, 5));
    const scratch = new Uint8Array(8);
    const inside = q.take(3, scratch);
    expect(inside.buffer).toBe(a.buffer);
    const across = q.take(4, scratch);
    expect(across.buffer).toBe(scratch.buffer);
    expect(Array.from(across)).toEqual(Array.from(bytes(3, 4)));
  });
});
