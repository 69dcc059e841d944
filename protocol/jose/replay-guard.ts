/**
 * Replay protection for party requests. Per party it keeps the highest accepted seq and a bounded
 * window of recent nonces; a request is refused when its seq does not exceed the last accepted one
 * or its nonce was seen. The state is plain JSON so the enclave can persist it (sealed) across
 * restarts of its request loop.
 */

import { UsageError } from "../../attestation/errors.js";
import { ReplayError } from "./errors.js";
import { isPlainObject, isPositiveSafeInteger, keysProblem, NONCE, PARTY_ID } from "./lib/shape.js";

export const DEFAULT_MAX_NONCES = 1024;

export interface ReplayGuardState {
  version: 1;
  maxNonces: number;
  /** Party id → last accepted seq and recent nonces, oldest first. */
  parties: Record<string, { seq: number; nonces: string[] }>;
}

export class ReplayGuard {
  readonly maxNonces: number;
  readonly #parties = new Map<string, { seq: number; nonces: string[]; set: Set<string> }>();

  constructor(options: { maxNonces?: number } = {}) {
    const max = options.maxNonces ?? DEFAULT_MAX_NONCES;
    if (!isPositiveSafeInteger(max)) throw new UsageError("maxNonces must be a positive integer");
    this.maxNonces = max;
  }

  /** Last accepted seq for `party` (0 when none). */
  lastSeq(party: string): number {
    return this.#parties.get(party)?.seq ?? 0;
  }

  /** Throws ReplayError unless (seq, nonce) would be accepted; changes nothing. */
  check(party: string, seq: number, nonce: string): void {
    if (!NONCE.test(nonce)) throw new ReplayError("malformed nonce");
    if (!isPositiveSafeInteger(seq)) throw new ReplayError("malformed seq");
    const p = this.#parties.get(party);
    if (p?.set.has(nonce)) throw new ReplayError("nonce already seen");
    if (p && seq <= p.seq) throw new ReplayError("seq not greater than last accepted");
  }

  /** Check, then record (seq, nonce) as the party's latest accepted request. */
  accept(party: string, seq: number, nonce: string): void {
    this.check(party, seq, nonce);
    let p = this.#parties.get(party);
    if (!p) {
      p = { seq: 0, nonces: [], set: new Set() };
      this.#parties.set(party, p);
    }
    p.seq = seq;
    p.nonces.push(nonce);
    p.set.add(nonce);
    while (p.nonces.length > this.maxNonces) p.set.delete(p.nonces.shift()!);
  }

  toState(): ReplayGuardState {
    const parties: ReplayGuardState["parties"] = {};
    for (const [id, p] of this.#parties) parties[id] = { seq: p.seq, nonces: [...p.nonces] };
    return { version: 1, maxNonces: this.maxNonces, parties };
  }

  /** Rebuild a guard from persisted state; throws UsageError when the state is malformed. */
  static fromState(state: unknown): ReplayGuard {
    const bad = () => new UsageError("malformed replay guard state");
    if (
      !isPlainObject(state) ||
      keysProblem(state, ["version", "maxNonces", "parties"]) ||
      state.version !== 1
    ) {
      throw bad();
    }
    if (!isPositiveSafeInteger(state.maxNonces) || !isPlainObject(state.parties)) throw bad();
    const guard = new ReplayGuard({ maxNonces: state.maxNonces });
    for (const [id, p] of Object.entries(state.parties)) {
      if (!PARTY_ID.test(id) || !isPlainObject(p) || keysProblem(p, ["seq", "nonces"])) throw bad();
      const { seq, nonces } = p;
      if (!isPositiveSafeInteger(seq) || !Array.isArray(nonces) || nonces.length > guard.maxNonces)
        throw bad();
      if (!nonces.every((n) => typeof n === "string" && NONCE.test(n))) throw bad();
      const set = new Set(nonces as string[]);
      if (set.size !== nonces.length) throw bad();
      guard.#parties.set(id, { seq, nonces: [...(nonces as string[])], set });
    }
    return guard;
  }
}
