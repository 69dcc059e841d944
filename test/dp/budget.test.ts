import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { budgetMicros, epsilonCostMicros, PrivacyBudget } from "../../enclave/dp/budget.js";

const code = (c: string) => expect.objectContaining({ code: c });

describe("budget accounting", () => {
  it("1000 debits of 0.001 spend exactly 1.0; the 1001st is refused with nothing changed", () => {
    const budget = new PrivacyBudget();
    const policy = { epsilon: 0.001, budget: 1 };
    for (let i = 0; i < 1000; i++) budget.debit("acme", policy);
    expect(budget.spent("acme")).toBe(1_000_000);
    expect(budget.remaining("acme", policy)).toBe(0);
    expect(() => budget.debit("acme", policy)).toThrow(code("ERR_DP_BUDGET"));
    expect(budget.spent("acme")).toBe(1_000_000);
  });

  it("float sums drift, micro-epsilon does not: 10 x 0.1 fits a budget of 1", () => {
    expect(Array.from({ length: 10 }, () => 0.1).reduce((a, b) => a + b)).not.toBe(1);
    const budget = new PrivacyBudget();
    for (let i = 0; i < 10; i++) budget.debit("acme", { epsilon: 0.1, budget: 1 });
    expect(budget.spent("acme")).toBe(1_000_000);
  });

  it("budgets are per party", () => {
    const budget = new PrivacyBudget();
    const policy = { epsilon: 0.6, budget: 1 };
    budget.debit("acme", policy);
    expect(() => budget.debit("acme", policy)).toThrow(code("ERR_DP_BUDGET"));
    budget.debit("news", policy);
    expect(budget.spent("news")).toBe(600_000);
  });

  it("charges round up, budgets round down, at 1e-6", () => {
    expect(epsilonCostMicros({ epsilon: 0.0000001 })).toBe(1);
    expect(epsilonCostMicros({ epsilon: 1.0000001 })).toBe(1_000_001);
    expect(budgetMicros({ budget: 1.0000009 })).toBe(1_000_000);
    expect(() => epsilonCostMicros({ epsilon: 0 })).toThrow(code("ERR_DP_POLICY"));
    expect(() => budgetMicros({ budget: Number.NaN })).toThrow(code("ERR_DP_POLICY"));
  });

  it("refuses malformed party ids", () => {
    const budget = new PrivacyBudget();
    expect(() => budget.debit("Acme!", { epsilon: 1, budget: 2 })).toThrow(code("ERR_DP_POLICY"));
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
        (runs, limit) => {
          const spending = new PrivacyBudget();
          for (const r of runs) {
            const before = spending.spent(r.party);
            try {
              spending.debit(r.party, { epsilon: r.epsilon, budget: limit });
              expect(spending.spent(r.party)).toBe(before + epsilonCostMicros(r));
            } catch (e) {
              expect(e).toMatchObject({ code: "ERR_DP_BUDGET" });
              expect(spending.spent(r.party)).toBe(before);
            }
            for (const p of ["a", "b"]) {
              expect(spending.spent(p)).toBeGreaterThanOrEqual(0);
              expect(spending.spent(p)).toBeLessThanOrEqual(budgetMicros({ budget: limit }));
              expect(spending.remaining(p, { budget: limit })).toBeGreaterThanOrEqual(0);
            }
          }
        },
      ),
    );
  });
});

describe("replay from audit debits", () => {
  it("rebuilds spending from the debits a chain carries, in order", () => {
    const live = new PrivacyBudget();
    const debits = [
      live.debit("acme", { epsilon: 0.5, budget: 2 }),
      live.debit("news", { epsilon: 0.25, budget: 2 }),
      live.debit("acme", { epsilon: 0.5, budget: 2 }),
    ];
    expect(debits[2]).toEqual({ party: "acme", micros: 500_000, total: 1_000_000 });
    const replayed = PrivacyBudget.replay(JSON.parse(JSON.stringify(debits)));
    expect(replayed.spent("acme")).toBe(1_000_000);
    expect(replayed.spent("news")).toBe(250_000);
    replayed.debit("acme", { epsilon: 1, budget: 2 });
    expect(() => replayed.debit("acme", { epsilon: 0.000001, budget: 2 })).toThrow(code("ERR_DP_BUDGET"));
  });

  it("refuses debits whose totals do not add up (one dropped, one edited)", () => {
    const d = (party: string, micros: number, total: number) => ({ party, micros, total });
    expect(() => PrivacyBudget.replay([d("acme", 5, 5), d("acme", 5, 15)])).toThrow(code("ERR_DP_POLICY"));
    expect(() => PrivacyBudget.replay([d("acme", 5, 6)])).toThrow(code("ERR_DP_POLICY"));
    expect(PrivacyBudget.replay([d("acme", 5, 5), d("news", 5, 5), d("acme", 1, 6)]).spent("acme")).toBe(6);
  });
});
