import { CleanroomError } from "../../attestation/errors.js";

/**
 * A contract document is malformed. `path` locates the failing element ("queries[2].runners[0]")
 * and `reason` says what is wrong with it; neither quotes a value from the document.
 */
export class ContractError extends CleanroomError {
  static override code = "ERR_CONTRACT";
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

/**
 * The parties' approvals of a contract are incomplete or invalid. The error names the party
 * (a contract party id, validated against the id pattern, so safe to print) or, when the signer
 * cannot be attributed to a party, the index of the approval in the list given.
 */
export class ContractSignatureError extends CleanroomError {
  static override code = "ERR_CONTRACT_SIGNATURE";
  readonly party: string | undefined;
  readonly approval: number | undefined;

  constructor(who: { party: string } | { approval: number }, reason: string) {
    super(`${"party" in who ? `party ${who.party}` : `approvals[${who.approval}]`}: ${reason}`);
    this.party = "party" in who ? who.party : undefined;
    this.approval = "approval" in who ? who.approval : undefined;
  }
}
