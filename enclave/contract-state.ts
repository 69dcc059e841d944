/**
 * Admission of the one contract an enclave instance serves: the document is validated, every
 * party's approval verified over its digest, each party's age recipient decoded (results are
 * encrypted to it), and every approved query checked on DuckDB's parse tree. All or nothing.
 */
import { UsageError } from "../attestation/errors.js";
import { decodeRecipient } from "../protocol/age/keys.js";
import type { AuditEntry } from "../protocol/audit/entry.js";
import { ContractError } from "../protocol/contract/errors.js";
import { verifyApprovals } from "../protocol/contract/sign.js";
import type { ApprovedQuery, Contract, Dataset } from "../protocol/contract/types.js";
import { validateContract } from "../protocol/contract/validate.js";
import { isPlainObject, keysProblem } from "../protocol/jose/lib/shape.js";
import { QueryNotApprovedError, UnknownDatasetError } from "./errors.js";
import { checkContractQueries } from "./sql/check.js";

/** At most one approval per party, and the contract allows 32 parties. */
const MAX_APPROVALS = 32;

export class ActiveContract {
  private constructor(
    readonly contract: Contract,
    /** The approvals as received, all verified. */
    readonly approvals: readonly string[],
    /** Contract digest, hex. */
    readonly digest: string,
  ) {}

  /** Validates and verifies `input` = {contract, approvals}; throws the first refusal. */
  static async admit(input: unknown): Promise<ActiveContract> {
    if (!isPlainObject(input) || keysProblem(input, ["contract", "approvals"])) {
      throw new UsageError("contract: body must be {contract, approvals}");
    }
    const { approvals } = input;
    if (
      !Array.isArray(approvals) ||
      approvals.length > MAX_APPROVALS ||
      !approvals.every((a) => typeof a === "string")
    ) {
      throw new UsageError("contract: approvals must be a list of compact JWS");
    }
    const contract = validateContract(input.contract);
    const { digest } = await verifyApprovals(contract, approvals as string[]);
    contract.parties.forEach((p, i) => {
      try {
        decodeRecipient(p.ageRecipient);
      } catch {
        throw new ContractError(`parties[${i}].ageRecipient`, "not a valid age recipient");
      }
    });
    await checkContractQueries(contract);
    return new ActiveContract(contract, [...(approvals as string[])], digest.hex);
  }

  dataset(id: string): Dataset {
    const d = this.contract.datasets.find((x) => x.id === id);
    if (!d) throw new UnknownDatasetError("dataset not in the contract");
    return d;
  }

  query(id: string): ApprovedQuery {
    const q = this.contract.queries.find((x) => x.id === id);
    if (!q) throw new QueryNotApprovedError("query not in the contract");
    return q;
  }

  recipient(partyId: string): string {
    return this.contract.parties.find((p) => p.id === partyId)!.ageRecipient;
  }

  /**
   * The query-run entries recorded under this contract in a restored chain, oldest first: what a
   * restart must not reset (maxRuns counts, privacy budgets). The chain was verified entry by
   * entry before it was restored (signatures, each instance's evidence); a valid but truncated
   * one is caught by the parties' audit heads (restore-gate.ts).
   */
  runsIn(entries: readonly AuditEntry[]): AuditEntry<"query-run">[] {
    const runs: AuditEntry<"query-run">[] = [];
    let current: string | undefined;
    for (const e of entries) {
      if (e.kind === "contract-accepted") current = (e as AuditEntry<"contract-accepted">).data.contract;
      else if (e.kind === "query-run" && current === this.digest) runs.push(e as AuditEntry<"query-run">);
    }
    return runs;
  }
}
