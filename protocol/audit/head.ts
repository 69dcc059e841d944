import type { AuditHead } from "./entry.js";
import { AuditError } from "./errors.js";

/**
 * Compare a chain head just received (e.g. in a response) with the last one this party saw.
 * A lower seq is a rollback; the same seq with another hash is a fork. Both throw AuditError with
 * the seen seq. A higher seq is accepted here; only verifyAuditLog proves it extends `seen`.
 */
export function checkHeadNotRolledBack(seen: AuditHead, current: AuditHead): void {
  if (current.seq < seen.seq) throw new AuditError(seen.seq, "head rolled back");
  if (current.seq === seen.seq && current.hash !== seen.hash) throw new AuditError(seen.seq, "head forked");
}
