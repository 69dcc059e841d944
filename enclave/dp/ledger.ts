/**
 * Per-party privacy-budget ledger. Epsilon is accounted in integer micro-epsilon (charges
 * rounded up, budgets rounded down), so 1000 debits of 0.001 sum to exactly 1.0. A debit happens
 * BEFORE a result leaves and is refused, with no state change, when it would take the party past
 * its budget.
 *
 * Every debit is an entry of the ledger's own hash chain {seq, prev, party, query, micros,
 * total}; the runtime persists entries (signed, e.g. inside audit entries) through the untrusted
 * host and a restarted enclave resumes by replaying them. The host can still present a shorter
 * chain: detectRollback compares the resumed head with the heads parties saw in responses.
 * Plain data in and out: no dependency on the audit module.
 */

import { createHash } from "node:crypto";
import type { AuditLedgerEntry } from "../../protocol/audit/entry.js";
import type { DpParameters } from "../../protocol/contract/types.js";
import { BudgetExhaustedError, DpPolicyError, LedgerFormatError, LedgerRollbackError } from "./errors.js";
import { toMicros } from "./rational.js";

export interface LedgerHead {
  /** seq of the last entry; 0 for an empty ledger. */
  seq: number;
  /** Hex SHA-256 of the last entry; 64 zeros for an empty ledger. */
  hash: string;
}

/** One debit; the same record the query-run audit entry carries (protocol/audit/entry.ts). */
export type LedgerEntry = AuditLedgerEntry;

/** Serialised ledger: a snapshot whose head names the last entry it includes. */
export interface LedgerState {
  version: 1;
  head: LedgerHead;
  /** Micro-epsilon spent per party, keys sorted. */
  spent: Record<string, number>;
}

export const LEDGER_GENESIS_HASH = "0".repeat(64);
const HASH_LABEL = "cleanroom-dp-ledger-v1\n";
const HEX64 = /^[0-9a-f]{64}$/;
const PARTY = /^[a-z][a-z0-9_-]{0,63}$/;
const QUERY = /^([a-z][a-z0-9_-]{0,63})?$/;

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

/** Hex SHA-256 of an entry: a label, then its fields as JSON in a fixed order. */
export function ledgerEntryHash(e: LedgerEntry): string {
  const body = JSON.stringify([e.seq, e.prev, e.party, e.query, e.micros, e.total]);
  return createHash("sha256").update(HASH_LABEL).update(body).digest("hex");
}

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function exactKeys(v: Record<string, unknown>, keys: string[]): boolean {
  const own = Object.keys(v);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(v, k));
}

function parseHead(v: unknown): LedgerHead {
  if (!isObject(v) || !exactKeys(v, ["seq", "hash"]) || !count(v.seq) || typeof v.hash !== "string") {
    throw new LedgerFormatError("ledger head malformed");
  }
  if (!HEX64.test(v.hash)) throw new LedgerFormatError("ledger head malformed");
  if (v.seq === 0 && v.hash !== LEDGER_GENESIS_HASH) throw new LedgerFormatError("ledger head malformed");
  return { seq: v.seq, hash: v.hash };
}

function parseEntry(v: unknown): LedgerEntry {
  const ok =
    isObject(v) &&
    exactKeys(v, ["seq", "prev", "party", "query", "micros", "total"]) &&
    count(v.seq) &&
    v.seq >= 1 &&
    typeof v.prev === "string" &&
    HEX64.test(v.prev) &&
    typeof v.party === "string" &&
    PARTY.test(v.party) &&
    typeof v.query === "string" &&
    QUERY.test(v.query) &&
    count(v.micros) &&
    v.micros >= 1 &&
    count(v.total);
  if (!ok) throw new LedgerFormatError("ledger entry malformed");
  const { seq, prev, party, query, micros, total } = v as unknown as LedgerEntry;
  return { seq, prev, party, query, micros, total };
}

export class PrivacyLedger {
  #head: LedgerHead = { seq: 0, hash: LEDGER_GENESIS_HASH };
  readonly #spent = new Map<string, number>();
  /** Hashes of the entries this instance made or replayed, by seq (for fork checks). */
  readonly #hashes = new Map<number, string>([[0, LEDGER_GENESIS_HASH]]);

  /** A ledger with nothing spent. */
  static empty(): PrivacyLedger {
    return new PrivacyLedger();
  }

  /** Resumes from a snapshot (whose authenticity the caller checked, e.g. an enclave signature). */
  static fromJSON(state: unknown): PrivacyLedger {
    if (!isObject(state) || !exactKeys(state, ["version", "head", "spent"]) || state.version !== 1) {
      throw new LedgerFormatError("ledger state malformed");
    }
    const ledger = new PrivacyLedger();
    ledger.#head = parseHead(state.head);
    ledger.#hashes.clear();
    ledger.#hashes.set(ledger.#head.seq, ledger.#head.hash);
    if (!isObject(state.spent)) throw new LedgerFormatError("ledger state malformed");
    for (const [party, micros] of Object.entries(state.spent)) {
      if (!PARTY.test(party) || !count(micros)) throw new LedgerFormatError("ledger state malformed");
      if (micros > 0) ledger.#spent.set(party, micros);
    }
    if (ledger.#head.seq === 0 && ledger.#spent.size > 0)
      throw new LedgerFormatError("ledger state malformed");
    return ledger;
  }

  /** Rebuilds a ledger from its entries, optionally on top of a snapshot; each must extend the chain. */
  static replay(entries: readonly unknown[], from?: LedgerState): PrivacyLedger {
    const ledger = from ? PrivacyLedger.fromJSON(from) : new PrivacyLedger();
    for (const e of entries) ledger.append(e);
    return ledger;
  }

  get head(): LedgerHead {
    return { ...this.#head };
  }

  /** Micro-epsilon spent by `party`. */
  spent(party: string): number {
    return this.#spent.get(party) ?? 0;
  }

  /** Micro-epsilon `party` may still spend under `policy`'s budget (never negative). */
  remaining(party: string, policy: Pick<DpParameters, "budget">): number {
    return Math.max(0, budgetMicros(policy) - this.spent(party));
  }

  /** Hash of entry `seq`, when this instance made or replayed it (or resumed at it). */
  hashAt(seq: number): string | undefined {
    return this.#hashes.get(seq);
  }

  /**
   * Charges one run of `policy` to `party`, or throws BudgetExhaustedError and changes nothing.
   * Returns the new entry: persist it before releasing the result.
   */
  debit(party: string, policy: Pick<DpParameters, "epsilon" | "budget">, query = ""): LedgerEntry {
    if (!PARTY.test(party)) throw new DpPolicyError("party id malformed");
    if (!QUERY.test(query)) throw new DpPolicyError("query id malformed");
    const micros = epsilonCostMicros(policy);
    const total = this.spent(party) + micros;
    if (!Number.isSafeInteger(total) || total > budgetMicros(policy)) throw new BudgetExhaustedError();
    const entry: LedgerEntry = {
      seq: this.#head.seq + 1,
      prev: this.#head.hash,
      party,
      query,
      micros,
      total,
    };
    this.#commit(entry);
    return entry;
  }

  /** Appends an entry made elsewhere (replay): it must extend this chain and add up. */
  append(value: unknown): LedgerHead {
    const entry = parseEntry(value);
    if (entry.seq !== this.#head.seq + 1 || entry.prev !== this.#head.hash) {
      throw new LedgerFormatError("ledger entry does not extend the chain");
    }
    if (entry.total !== this.spent(entry.party) + entry.micros) {
      throw new LedgerFormatError("ledger entry total does not add up");
    }
    this.#commit(entry);
    return this.head;
  }

  #commit(entry: LedgerEntry): void {
    const hash = ledgerEntryHash(entry);
    this.#spent.set(entry.party, entry.total);
    this.#head = { seq: entry.seq, hash };
    this.#hashes.set(entry.seq, hash);
  }

  toJSON(): LedgerState {
    const spent: Record<string, number> = {};
    for (const party of [...this.#spent.keys()].sort()) spent[party] = this.#spent.get(party)!;
    return { version: 1, head: this.head, spent };
  }

  /** detectRollback against this ledger's head, also catching forks at seqs it knows. */
  checkPresentedHeads(presented: readonly unknown[]): void {
    detectRollback(this.#head, presented, (seq) => this.#hashes.get(seq));
  }
}

/**
 * Refuses (LedgerRollbackError) when any party presents a head beyond the stored one: a greater
 * seq, or the same seq with another hash. A presented head behind the stored one is normal (that
 * party has not run a query lately); when `hashAt` knows the stored chain's hash at that seq, a
 * different hash there is a fork and is refused too.
 */
export function detectRollback(
  stored: LedgerHead,
  presented: readonly unknown[],
  hashAt?: (seq: number) => string | undefined,
): void {
  const head = parseHead(stored);
  for (const value of presented) {
    const p = parseHead(value);
    if (p.seq > head.seq) throw new LedgerRollbackError(head.seq, "head ahead of stored ledger");
    const known = p.seq === head.seq ? head.hash : hashAt?.(p.seq);
    if (known !== undefined && known !== p.hash)
      throw new LedgerRollbackError(head.seq, "head forked from stored ledger");
  }
}
