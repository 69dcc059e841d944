/**
 * What a restarted enclave asks before it spends what the restored log counts. A restored log
 * verifies when it is a valid prefix of the real one, so a host could hand over a truncated log
 * and give back privacy budget and maxRuns, or make the differencing guard forget. Once the
 * restored log holds this contract's earlier acceptance, a budgeted (DP), run-limited (maxRuns) or
 * guarded query runs only when the requester, or
 * every other party, has presented in a signed grant or query since the restore a head of the
 * restored part: proof that the log holds everything that party saw before the restart. A head
 * the chain does not hold at all is refused earlier (ERR_AUDIT_ROLLBACK).
 *
 * What stays open: a party that dropped its own state (a new machine, a memory store) presents
 * nothing, and runs of it that no other party saw (as a recipient, or through its own later
 * head) are not protected by anyone's head. See docs/THREAT-MODEL.md.
 */
import type { AuditHead } from "../protocol/audit/entry.js";
import { type ApprovedQuery, differencingGuarded } from "../protocol/contract/types.js";
import type { AuditChain } from "./audit-chain.js";
import { AuditHeadRequiredError } from "./errors.js";

/**
 * A query whose answers depend on what earlier runs did: a privacy budget (DP), a run limit, or
 * the differencing guard's history (its sealed blobs are named by the very entries a truncation
 * would drop).
 */
function spendsHistory(query: ApprovedQuery): boolean {
  const { policy } = query;
  return policy.dp !== undefined || policy.maxRuns !== undefined || differencingGuarded(policy);
}

export class RestoreGate {
  readonly #vouched = new Set<string>();

  private constructor(
    private readonly chain: AuditChain,
    private readonly parties: readonly string[],
    /** False when nothing this contract spent is in a restored log (a first start). */
    private readonly active: boolean,
  ) {}

  /** The gate for `digest`'s contract on `chain`, as it stands when the contract is accepted. */
  static for(chain: AuditChain, digest: string, parties: readonly string[]): RestoreGate {
    const restored = chain.entries.slice(0, chain.restoredSeq);
    const active = restored.some(
      (e) => e.kind === "contract-accepted" && (e.data as { contract: string }).contract === digest,
    );
    return new RestoreGate(chain, parties, active);
  }

  /** Records a head `party` presented in a verified request (the caller checked it is in the chain). */
  present(party: string, head: AuditHead): void {
    if (this.chain.vouchesForRestore(head)) this.#vouched.add(party);
  }

  /** Throws AuditHeadRequiredError when `query` spends what the restored log counts and nobody vouched. */
  check(requester: string, query: ApprovedQuery): void {
    if (!this.active || !spendsHistory(query)) return;
    if (this.#vouched.has(requester)) return;
    if (this.parties.every((p) => p === requester || this.#vouched.has(p))) return;
    throw new AuditHeadRequiredError();
  }
}
