/**
 * Continuity before acting. A party remembers the highest audit head it has seen per host
 * (state.ts); every later enclave answer must extend it. When the clean room behind a URL was
 * reset (a new stack, a new log), or its host rolled the log back, that check would only fail
 * after the request had taken effect. So before the first request that acts, the client asks the
 * host for its copy of the log from that head on and stops, having sent nothing, if the log no
 * longer holds it. The host is untrusted, so this is a courtesy check only: the signed answers
 * are still checked against the head afterwards, as before.
 */
import { base64url } from "jose";
import { CleanroomError } from "../../attestation/errors.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { entryHash, parseEntryPayload } from "../../protocol/audit/entry.js";
import { auditEntries } from "./audit.js";
import type { HostClient } from "./http.js";
import type { HostState } from "./state.js";

/** The clean room at this URL no longer holds the log this party saw: reset, or rolled back. */
export class CleanroomResetError extends CleanroomError {
  static override code = "ERR_CLEANROOM_RESET";
  readonly seen: AuditHead;

  constructor(url: string, seen: AuditHead) {
    super(
      `the clean room at ${url} no longer holds the audit log this party saw (up to entry ${seen.seq}); ` +
        "it was reset, or its host rolled the log back. Nothing was sent. If it was reset on purpose, " +
        "run `cleanroom attest --accept-reset` to trust the new log; otherwise tell the other parties",
    );
    this.seen = seen;
  }
}

/** The seq and hash of one stored audit entry, or undefined when it is not one. */
async function headOf(jws: string): Promise<AuditHead | undefined> {
  const payload = jws.split(".")[1];
  if (payload === undefined) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(payload);
  } catch {
    return undefined;
  }
  const entry = parseEntryPayload(bytes);
  return entry ? { seq: entry.seq, hash: await entryHash(bytes) } : undefined;
}

/** Throws CleanroomResetError unless the host's log holds the highest head `state` remembers. */
export async function checkContinuity(host: HostClient, state: HostState): Promise<void> {
  const seen = await state.highestHead();
  if (!seen || seen.seq < 1) return;
  const entries = auditEntries(await host.getJson(`/audit?from=${seen.seq}`));
  // The log from `seen.seq` on; a host that answers from an earlier entry is read at the offset.
  const first = entries[0] === undefined ? undefined : await headOf(entries[0]);
  const at = first && first.seq <= seen.seq ? entries[seen.seq - first.seq] : undefined;
  const entry = at === undefined ? undefined : at === entries[0] ? first : await headOf(at);
  if (!entry || entry.seq !== seen.seq || entry.hash !== seen.hash) {
    throw new CleanroomResetError(host.baseUrl.replace(/\/api\/v1$/, ""), seen);
  }
}
