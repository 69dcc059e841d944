/**
 * Refusal of an approved query at contract load. The reason names the rule and, where one is at
 * fault, the expression as the contract's own SQL spells it (contract text, never data).
 */
import { CleanroomError } from "../../attestation/errors.js";

/** An approved query of the contract does not fit its analysis rule (docs/QUERY-RULES.md). */
export class QueryCheckError extends CleanroomError {
  static override code = "ERR_CONTRACT_QUERY";
  readonly queryId: string;
  readonly reason: string;

  constructor(queryId: string, reason: string) {
    super(`query ${queryId}: ${reason}`);
    this.queryId = queryId;
    this.reason = reason;
  }
}
