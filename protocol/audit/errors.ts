import { CleanroomError } from "../../attestation/errors.js";

/** The audit log fails verification; `seq` is the sequence number of the failing entry or head. */
export class AuditError extends CleanroomError {
  static override code = "ERR_AUDIT";
  readonly seq: number;
  /** The fixed reason, without the seq. */
  readonly reason: string;

  constructor(seq: number, reason: string) {
    super(`audit entry ${seq}: ${reason}`);
    this.seq = seq;
    this.reason = reason;
  }
}
