/**
 * The differencing guard, judged by effect: the demo's audience-insight query run for two
 * categories that differ by one person (the target plus 400 others, and the same 400) must not
 * let the two answers be subtracted; the same attack on a world without the target must look the
 * same to the attacker.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DifferencingGuard, symmetricDifference } from "../../enclave/sql/differencing.js";
import { openEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { runApprovedQuery } from "../../enclave/sql/run.js";
import { csvStream } from "./helpers.js";
import { audienceInsight, exposures, hashedEmail, purchases } from "./usecases.js";

const BANDS = ["18-34", "35-49", "50-64"];

/** 1 200 publisher users in three age bands; the advertiser's two categories as the attacker chose them. */
function world(targetInA: boolean): { purchases: string; exposures: string } {
  const e = ["user_id,exposure_ts,campaign,channel,arm,segment,age_band"];
  for (let i = 0; i < 1200; i++) {
    e.push(`${hashedEmail(i)},2024-04-02 10:00:00,spring24,ctv,exposed,news,${BANDS[i % 3]}`);
  }
  const p = ["user_id,purchase_ts,amount,category"];
  for (let i = 1; i <= 400; i++) {
    p.push(`${hashedEmail(i)},2024-04-05 12:00:00,10.00,A`);
    p.push(`${hashedEmail(i)},2024-04-05 12:00:00,10.00,B`);
  }
  // The target is user 0 (band 18-34): in category A only, in the world where it is a buyer.
  if (targetInA) p.push(`${hashedEmail(0)},2024-04-05 12:00:00,10.00,A`);
  return { purchases: `${p.join("\n")}\n`, exposures: `${e.join("\n")}\n` };
}

async function attack(targetInA: boolean, guarded: boolean): Promise<[unknown[][], unknown[][]]> {
  const engine = await openEngine();
  try {
    const data = world(targetInA);
    await ingestDataset(engine, purchases, csvStream(data.purchases, 65536));
    await ingestDataset(engine, exposures, csvStream(data.exposures, 65536));
    const guard = guarded ? new DifferencingGuard() : undefined;
    const a = await runApprovedQuery(engine, audienceInsight, { category: "A" }, { guard });
    const b = await runApprovedQuery(engine, audienceInsight, { category: "B" }, { guard });
    return [a.rows, b.rows];
  } finally {
    engine.close();
  }
}

describe("differencing guard", () => {
  it("without the guard, the demo query tells the two worlds apart (the attack works)", async () => {
    const [a1, b1] = await attack(true, false);
    const [a0, b0] = await attack(false, false);
    const diff = (a: unknown[][], b: unknown[][]) => a.map((r, i) => Number(r[1]) - Number(b[i]![1]));
    expect(diff(a1, b1)).toEqual([1, 0, 0]);
    expect(diff(a0, b0)).toEqual([0, 0, 0]);
  });

  it("with the guard, both worlds give the attacker the same view", async () => {
    const with1 = await attack(true, true);
    const with0 = await attack(false, true);
    // The first category's answer is released (every band holds >= k people); the second's rows
    // differ from released ones by 0 or 1 person and are all suppressed, in both worlds.
    expect(with1[1]).toEqual([]);
    expect(with0[1]).toEqual([]);
    // The first answers differ only by the target's own count, inside a group of >= k: the rule.
    expect(with1[0]!.map((r) => r[0])).toEqual(BANDS);
    expect(with0[0]!.map((r) => r[0])).toEqual(BANDS);
  });

  it("releases a second answer whose groups differ from the first by k or more people", async () => {
    const guard = new DifferencingGuard();
    const set = (from: number, to: number) =>
      BigUint64Array.from({ length: to - from }, (_, i) => BigInt(from + i));
    expect(guard.release("q", [[set(0, 100)]], 50)).toEqual([true]);
    expect(guard.release("q", [[set(0, 149)]], 50)).toEqual([false]); // 49 more
    expect(guard.release("q", [[set(0, 150)]], 50)).toEqual([true]); // 50 more
    expect(guard.release("q", [[set(0, 100)]], 50)).toEqual([false]); // the first again
    expect(guard.release("other", [[set(0, 100)]], 50)).toEqual([true]); // per query
    // Within one release too, and per table: one table differing by < k is enough.
    expect(
      guard.release(
        "r",
        [
          [set(0, 100), set(0, 60)],
          [set(100, 200), set(0, 61)],
        ],
        50,
      ),
    ).toEqual([true, false]);
  });

  it("releases nothing more of a query whose history an earlier instance held", () => {
    const guard = new DifferencingGuard();
    const set = BigUint64Array.from({ length: 100 }, (_, i) => BigInt(i));
    guard.lost("q");
    expect(guard.release("q", [[set]], 10)).toEqual([false]);
    expect(guard.release("other", [[set]], 10)).toEqual([true]);
  });

  it("fails closed when a query's history would exceed its memory bound", () => {
    const guard = new DifferencingGuard(150);
    const set = (from: number) => BigUint64Array.from({ length: 100 }, (_, i) => BigInt(from + i));
    expect(guard.release("q", [[set(0)]], 10)).toEqual([true]);
    expect(guard.release("q", [[set(1000)]], 10)).toEqual([false]);
  });

  it("symmetricDifference matches a set computation, up to its limit", () => {
    const sorted = fc
      .uniqueArray(fc.bigInt({ min: 0n, max: 300n }), { maxLength: 60 })
      .map((a) => BigUint64Array.from(a).sort());
    fc.assert(
      fc.property(sorted, sorted, fc.integer({ min: 1, max: 80 }), (a, b, limit) => {
        const x = new Set(a);
        const y = new Set(b);
        const exact = [...x].filter((v) => !y.has(v)).length + [...y].filter((v) => !x.has(v)).length;
        expect(symmetricDifference(a, b, limit)).toBe(Math.min(exact, limit));
      }),
    );
  });
});
