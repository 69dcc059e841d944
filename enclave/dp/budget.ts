/**
 * Per-party privacy budget. Epsilon is accounted in integer micro-epsilon (charges rounded up,
 * budgets rounded down), so 1000 debits of 0.001 sum to exactly 1.0. A debit happens BEFORE a
 * result leaves and is refused, with no state change, when it would take the party past its
 * budget.
 *
 * The debits of a run travel in its signed query-run audit entry (protocol/audit/entry.ts); a
 * restarted enclave rebuilds every party's spending by replaying them from the verified chain.
 */

import type { BudgetDebit } from "../../protocol/audit/entry.js";
import type { DpParameters } from "../../protocol/contract/types.js";
import { BudgetExhaustedError, DpPolicyError } from "./errors.js";
import { toMicros } from "./rational.js";

const PARTY = /^[a-z][a-z0-9_-]{0,63}$/;

/** What one run of a query under `policy` costs, in micro-epsilon (rounded up). */
export function epsilonCostMicros(policy: Pick<DpParameters, "epsilon">): number {
  if (!Number.isFinite(policy.epsilon) || policy.epsilon <= 0) {
    throw new DpPolicyError("epsilon must be a positive number");
  }
  return Number(toMicros(policy.epsilon, "up"));
}

/** A party's budget in micro-epsilon (rounded down). */
export function budgetMicros(policy: Pick<DpParameters, "budget">): number {
  if (!Number.isFinite(policy.budget) || policy.budget < 0) throw new DpPolicyError("budget must be >= 0");
  const micros = Number(toMicros(policy.budget, "down"));
  if (!Number.isSafeInteger(micros)) throw new DpPolicyError("budget out of range");
  return micros;
}

export class PrivacyBudget {
  readonly #spent = new Map<string, number>();

  /**
   * Rebuilds spending from the debits of a verified audit chain, in order; each debit's total
   * must be the party's spending so far plus its charge.
   */
  static replay(debits: readonly BudgetDebit[]): PrivacyBudget {
    const budget = new PrivacyBudget();
    for (const d of debits) {
      if (d.total !== budget.spent(d.party) + d.micros) {
        throw new DpPolicyError("audit chain debit total does not add up");
      }
      budget.#spent.set(d.party, d.total);
    }
    return budget;
  }

  /** Micro-epsilon spent by `party`. */
  spent(party: string): number {
    return this.#spent.get(party) ?? 0;
  }

  /** Micro-epsilon `party` may still spend under `policy`'s budget (never negative). */
  remaining(party: string, policy: Pick<DpParameters, "budget">): number {
    return Math.max(0, budgetMicros(policy) - this.spent(party));
  }

  /**
   * Charges one run of `policy` to `party`, or throws BudgetExhaustedError and changes nothing.
   * Returns the debit: record it (in the run's audit entry) before releasing the result.
   */
  debit(party: string, policy: Pick<DpParameters, "epsilon" | "budget">): BudgetDebit {
    if (!PARTY.test(party)) throw new DpPolicyError("party id malformed");
    const micros = epsilonCostMicros(policy);
    const total = this.spent(party) + micros;
    if (!Number.isSafeInteger(total) || total > budgetMicros(policy)) throw new BudgetExhaustedError();
    this.#spent.set(party, total);
    return { party, micros, total };
  }
}
