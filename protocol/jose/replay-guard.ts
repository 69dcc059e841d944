/**
 * Replay protection for party requests. Per party it keeps the highest accepted seq and a bounded
 * window of recent nonces; a request is refused when its seq does not exceed the last accepted one
 * or its nonce was seen. It lives as long as one enclave instance: a request is sealed to that
 * instance's key, so a restarted instance (new keys) cannot open a request made for an earlier one.
 */

import { UsageError } from "../../attestation/errors.js";
import { ReplayError } from "./errors.js";
import { isPositiveSafeInteger, NONCE } from "./lib/shape.js";

export const DEFAULT_MAX_NONCES = 1024;

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
}
