/**
 * Audit: fetch the log the host stores and verify it offline against the enclave signing keys
 * this party accepted through attestation, requiring it to reach the highest head seen before.
 */
import type { AuditHead } from "../../protocol/audit/entry.js";
import { type VerifiedAuditLog, verifyAuditLog } from "../../protocol/audit/verify.js";
import type { CleanroomClient } from "./client.js";
import { HostResponseError } from "./errors.js";
import type { HostClient } from "./http.js";
import type { HostState } from "./state.js";

export async function fetchAuditLog(host: HostClient): Promise<string[]> {
  const reply = await host.getJson<{ entries?: unknown }>("/audit");
  return auditEntries(reply);
}

/** The entries of a stored log document ({entries: [jws...]}, or a bare array). */
export function auditEntries(doc: unknown): string[] {
  const entries = Array.isArray(doc) ? doc : (doc as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries) || !entries.every((e) => typeof e === "string")) {
    throw new HostResponseError("audit log is not a list of entries");
  }
  return entries;
}

/** Verifies `entries` with the keys and head remembered in `state`, then records the new head. */
export async function verifyAuditWithState(entries: string[], state: HostState): Promise<VerifiedAuditLog> {
  const seen: AuditHead | undefined = await state.highestHead();
  const log = await verifyAuditLog(
    entries,
    await state.attestedSigningKeys(),
    seen ? { expectedHead: seen } : {},
  );
  await state.observeHead(log.head);
  return log;
}

/** Online audit: attests first (so the running enclave's key is among the trusted ones). */
export async function auditVerify(client: CleanroomClient): Promise<VerifiedAuditLog> {
  await client.attestation();
  return verifyAuditWithState(await fetchAuditLog(client.host), client.state);
}
