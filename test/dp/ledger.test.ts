import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  budgetMicros,
  detectRollback,
  epsilonCostMicros,
  LEDGER_GENESIS_HASH,
  type LedgerEntry,
  ledgerEntryHash,
  PrivacyLedger,
} from "../../enclave/dp/ledger.js";

const code = (c: string) => expect.objectContaining({ code: c });

describe("budget accounting", () => {
  it("1000 debits of 0.001 spend exactly 1.0; the 1001st is refused with nothing changed", () => {
    const ledger = PrivacyLedger.empty();
    const policy = { epsilon: 0.001, budget: 1 };
    for (let i = 0; i < 1000; i++) ledger.debit("acme", policy, "reach");
    expect(ledger.spent("acme")).toBe(1_000_000);
    expect(ledger.remaining("acme", policy)).toBe(0);
    const head = ledger.head;
    expect(() => ledger.debit("acme", policy, "reach")).toThrow(code("ERR_DP_BUDGET"));
    expect(ledger.head).toEqual(head);
    expect(ledger.spent("acme")).toBe(1_000_000);
  });

  it("float sums drift, micro-epsilon does not: 10 x 0.1 fits a budget of 1", () => {
    expect(Array.from({ length: 10 }, () => 0.1).reduce((a, b) => a + b)).not.toBe(1);
    const ledger = PrivacyLedger.empty();
    for (let i = 0; i < 10; i++) ledger.debit("acme", { epsilon: 0.1, budget: 1 });
    expect(ledger.spent("acme")).toBe(1_000_000);
  });

  it("budgets are per party", () => {
    const ledger = PrivacyLedger.empty();
    const policy = { epsilon: 0.6, budget: 1 };
    ledger.debit("acme", policy);
    expect(() => ledger.debit("acme", policy)).toThrow(code("ERR_DP_BUDGET"));
    ledger.debit("news", policy);
    expect(ledger.spent("news")).toBe(600_000);
  });

  it("charges round up, budgets round down, at 1e-6", () => {
    expect(epsilonCostMicros({ epsilon: 0.0000001 })).toBe(1);
    expect(epsilonCostMicros({ epsilon: 1.0000001 })).toBe(1_000_001);
    expect(budgetMicros({ budget: 1.0000009 })).toBe(1_000_000);
    expect(() => epsilonCostMicros({ epsilon: 0 })).toThrow(code("ERR_DP_POLICY"));
    expect(() => budgetMicros({ budget: Number.NaN })).toThrow(code("ERR_DP_POLICY"));
  });

  it("refuses malformed party and query ids", () => {
    const ledger = PrivacyLedger.empty();
    expect(() => ledger.debit("Acme!", { epsilon: 1, budget: 2 })).toThrow(code("ERR_DP_POLICY"));
    expect(() => ledger.debit("acme", { epsilon: 1, budget: 2 }, "Q 1")).toThrow(code("ERR_DP_POLICY"));
  });

  it("property: spent never exceeds the budget nor goes negative, whatever is asked", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            party: fc.constantFrom("a", "b"),
            epsilon: fc.double({ min: 1e-7, max: 3, noNaN: true }),
          }),
        ),
        fc.double({ min: 0, max: 5, noNaN: true }),
        (runs, budget) => {
          const ledger = PrivacyLedger.empty();
          for (const r of runs) {
            const before = ledger.spent(r.party);
            try {
              ledger.debit(r.party, { epsilon: r.epsilon, budget });
              expect(ledger.spent(r.party)).toBe(before + epsilonCostMicros(r));
            } catch (e) {
              expect(e).toMatchObject({ code: "ERR_DP_BUDGET" });
              expect(ledger.spent(r.party)).toBe(before);
            }
            for (const p of ["a", "b"]) {
              expect(ledger.spent(p)).toBeGreaterThanOrEqual(0);
              expect(ledger.spent(p)).toBeLessThanOrEqual(budgetMicros({ budget }));
              expect(ledger.remaining(p, { budget })).toBeGreaterThanOrEqual(0);
            }
          }
        },
      ),
    );
  });
});

describe("chain, persistence and resume", () => {
  function history() {
    const ledger = PrivacyLedger.empty();
    const entries: LedgerEntry[] = [];
    entries.push(ledger.debit("acme", { epsilon: 0.5, budget: 2 }, "reach"));
    entries.push(ledger.debit("news", { epsilon: 0.25, budget: 2 }, "overlap"));
    entries.push(ledger.debit("acme", { epsilon: 0.5, budget: 2 }, "reach"));
    return { ledger, entries };
  }

  it("entries chain by hash from the genesis value", () => {
    const { ledger, entries } = history();
    expect(entries[0]!.prev).toBe(LEDGER_GENESIS_HASH);
    expect(entries[1]!.prev).toBe(ledgerEntryHash(entries[0]!));
    expect(ledger.head).toEqual({ seq: 3, hash: ledgerEntryHash(entries[2]!) });
    expect(entries[2]!.total).toBe(1_000_000);
  });

  it("state round-trips through JSON", () => {
    const { ledger } = history();
    const restored = PrivacyLedger.fromJSON(JSON.parse(JSON.stringify(ledger)));
    expect(restored.toJSON()).toEqual(ledger.toJSON());
    expect(restored.spent("acme")).toBe(1_000_000);
    restored.debit("acme", { epsilon: 1, budget: 2 });
    expect(() => restored.debit("acme", { epsilon: 0.000001, budget: 2 })).toThrow(code("ERR_DP_BUDGET"));
  });

  it("a restarted enclave resumes by replaying entries, alone or after a snapshot", () => {
    const { ledger, entries } = history();
    const wire = JSON.parse(JSON.stringify(entries));
    expect(PrivacyLedger.replay(wire).toJSON()).toEqual(ledger.toJSON());
    const snapshot = PrivacyLedger.replay(wire.slice(0, 1)).toJSON();
    expect(PrivacyLedger.replay(wire.slice(1), snapshot).toJSON()).toEqual(ledger.toJSON());
  });

  it("refuses replayed entries that are tampered, reordered or malformed", () => {
    const { entries } = history();
    const e = (i: number) => ({ ...entries[i]! });
    // A total that does not add up; a consistent edit breaks the next entry's prev link instead.
    expect(() => PrivacyLedger.replay([e(0), { ...e(1), micros: 1 }])).toThrow(code("ERR_DP_LEDGER"));
    expect(() => PrivacyLedger.replay([e(0), { ...e(1), micros: 1, total: 1 }, e(2)])).toThrow(
      code("ERR_DP_LEDGER"),
    );
    expect(() => PrivacyLedger.replay([e(0), e(2)])).toThrow(code("ERR_DP_LEDGER"));
    expect(() => PrivacyLedger.replay([{ ...e(0), party: "news" }, e(1), e(2)])).toThrow(
      code("ERR_DP_LEDGER"),
    );
    expect(() => PrivacyLedger.replay([{ ...e(0), micros: 0, total: 0 }])).toThrow(code("ERR_DP_LEDGER"));
    expect(() => PrivacyLedger.replay([{ ...e(0), extra: 1 }])).toThrow(code("ERR_DP_LEDGER"));
    expect(() => PrivacyLedger.fromJSON({ version: 1, head: { seq: 0, hash: "x" }, spent: {} })).toThrow(
      code("ERR_DP_LEDGER"),
    );
    expect(() =>
      PrivacyLedger.fromJSON({ version: 1, head: { seq: 1, hash: "0".repeat(64) }, spent: { acme: -1 } }),
    ).toThrow(code("ERR_DP_LEDGER"));
  });

  it("detects a host that resumed the enclave from a rolled-back ledger", () => {
    const { ledger, entries } = history();
    const seenByAcme = ledger.head; // acme's last response carried seq 3
    const seenByNews = { seq: 2, hash: ledgerEntryHash(entries[1]!) };
    const resumed = PrivacyLedger.replay(entries.slice(0, 2)); // the host dropped the last entry
    expect(() => resumed.checkPresentedHeads([seenByNews, seenByAcme])).toThrow(code("ERR_DP_ROLLBACK"));
    expect(() => detectRollback(resumed.head, [seenByAcme])).toThrow(code("ERR_DP_ROLLBACK"));
    // The honest resume accepts both heads, including one behind the stored head.
    const honest = PrivacyLedger.replay(entries);
    expect(() => honest.checkPresentedHeads([seenByNews, seenByAcme])).not.toThrow();
  });

  it("detects forks: same seq with another hash, or a known earlier seq with another hash", () => {
    const { ledger } = history();
    const other = PrivacyLedger.empty();
    other.debit("acme", { epsilon: 0.7, budget: 2 });
    other.debit("acme", { epsilon: 0.7, budget: 2 });
    other.debit("acme", { epsilon: 0.1, budget: 2 });
    expect(() => detectRollback(ledger.head, [other.head])).toThrow(code("ERR_DP_ROLLBACK"));
    const forkedEarlier = { seq: 2, hash: other.hashAt(2)! };
    expect(() => ledger.checkPresentedHeads([forkedEarlier])).toThrow(code("ERR_DP_ROLLBACK"));
    // Without the stored chain's hash at seq 2, the standalone check cannot tell.
    expect(() => detectRollback(ledger.head, [forkedEarlier])).not.toThrow();
    expect(() => detectRollback(ledger.head, [{ seq: -1, hash: "a" }])).toThrow(code("ERR_DP_LEDGER"));
  });
});
