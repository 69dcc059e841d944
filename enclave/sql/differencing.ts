/**
 * The differencing guard: k protects one answer, not the difference of two. The enclave keeps,
 * per approved query, the sets of people (64-bit hashes of identities, per table read) behind
 * every row it released, and suppresses a new row if, for any table, its set differs from the
 * set of an earlier released row of the same query (this run's earlier rows included) by fewer
 * than k people — including by none: an identical set would otherwise be released where a set
 * with one more person is suppressed, and that choice alone would tell the two apart.
 *
 * The sets never leave the enclave in the clear. They live in its memory (8 bytes per person per
 * released row and table); once a query's history holds `maxIdentities` hashes, its further
 * releases are suppressed whole (fail closed). Each run's new rows are also sealed for the next
 * instance (enclave/guard-seal.ts), which `restore`s them; a query whose history cannot be
 * restored whole is marked `lost` and releases nothing more in that instance, rather than
 * forgetting what it released. docs/QUERY-RULES.md states the guarantee.
 */

/** One released row's people: per table read, sorted distinct identity hashes. */
export type PeopleSets = BigUint64Array[];

/** Default bound on the hashes kept per query (400 MB at 8 bytes each). */
export const DEFAULT_MAX_IDENTITIES = 50_000_000;

/** |a Δ b| for sorted arrays, or `limit` as soon as it reaches `limit`. */
export function symmetricDifference(a: BigUint64Array, b: BigUint64Array, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (a[i]! < b[j]!) i++;
    else j++;
    if (++d >= limit) return limit;
  }
  return Math.min(limit, d + (a.length - i) + (b.length - j));
}

export class DifferencingGuard {
  readonly #released = new Map<string, { rows: PeopleSets[]; identities: number }>();
  /** Queries whose history an earlier instance held: nothing of theirs is released again. */
  readonly #lost = new Set<string>();

  constructor(readonly maxIdentities = DEFAULT_MAX_IDENTITIES) {}

  /** `queryId` released rows in an earlier instance whose history this one does not have. */
  lost(queryId: string): void {
    this.#lost.add(queryId);
  }

  /** Adds rows an earlier instance released (unsealed from its history) to `queryId`'s history. */
  restore(queryId: string, rows: readonly PeopleSets[]): void {
    const history = this.#released.get(queryId) ?? { rows: [], identities: 0 };
    const size = rows.reduce((n, sets) => n + sets.reduce((m, s) => m + s.length, 0), 0);
    if (history.identities + size > this.maxIdentities) {
      this.lost(queryId);
      return;
    }
    history.rows.push(...rows);
    history.identities += size;
    this.#released.set(queryId, history);
  }

  /**
   * Decides one release of `queryId`: returns, per candidate row, whether it may be released, and
   * records the released rows. Candidates are compared with the history and with each other.
   */
  release(queryId: string, candidates: PeopleSets[], k: number): boolean[] {
    if (this.#lost.has(queryId)) return candidates.map(() => false);
    const history = this.#released.get(queryId) ?? { rows: [], identities: 0 };
    const size = candidates.reduce((n, sets) => n + sets.reduce((m, s) => m + s.length, 0), 0);
    if (history.identities + size > this.maxIdentities) return candidates.map(() => false);
    const released: PeopleSets[] = [];
    const decisions = candidates.map((sets) => {
      const near = (earlier: PeopleSets) =>
        earlier.length === sets.length && sets.some((s, t) => symmetricDifference(s, earlier[t]!, k) < k);
      const ok = !history.rows.some(near) && !released.some(near);
      if (ok) released.push(sets);
      return ok;
    });
    history.rows.push(...released);
    history.identities += released.reduce((n, sets) => n + sets.reduce((m, s) => m + s.length, 0), 0);
    this.#released.set(queryId, history);
    return decisions;
  }
}
