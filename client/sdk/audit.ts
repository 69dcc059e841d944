/**
 * Audit: fetch the log the host stores and verify the whole chain offline. Every instance's
 * segment is trusted through the evidence its "enclave-started" entry embeds, checked under this
 * party's own evidence policy (the one `attest` uses), so old instances need no live attestation.
 * The log must hold every head this party can hold it to: the highest head of its own answers,
 * the heads of other signed answers it kept (state.ts), and those of any stored results it is
 * asked to fetch.
 */
import type { EvidencePolicy } from "../../attestation/evidence.js";
import type { AuditEntry, AuditHead } from "../../protocol/audit/entry.js";
import {
  requireHeads,
  type VerifiedAuditChain,
  type VerifiedAuditLog,
  verifyAuditLog,
} from "../../protocol/audit/verify.js";
import { ResponseSignatureError } from "../../protocol/jose/errors.js";
import { isHead } from "../../protocol/jose/lib/bodies.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import type { CleanroomClient } from "./client.js";
import { HostResponseError } from "./errors.js";
import type { HostClient } from "./http.js";
import type { HostState } from "./state.js";

const RESULT_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** The most runs the host lists in one answer (host/routes-results.ts). */
const MAX_LISTED = 1000;

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

/**
 * Verifies `entries` under `policy` and requires the log to hold every head `state` remembers
 * (and `extraHeads`). The log's own head is not remembered: a host can show any valid prefix.
 */
export async function verifyAuditWithState(
  entries: string[],
  state: HostState,
  policy: EvidencePolicy,
  extraHeads: readonly AuditHead[] = [],
): Promise<VerifiedAuditChain> {
  const own = await state.highestHead();
  const heads = [...(own ? [own] : []), ...(await state.seenHeads()), ...extraHeads];
  return verifyAuditLog(entries, policy, { heads });
}

/**
 * The head of a stored query answer (GET /results/:id), once its signature verifies under the key
 * of one of the log's instances: a signed answer this party can fetch must point into the log.
 */
export async function resultHead(response: unknown, log: VerifiedAuditLog): Promise<AuditHead> {
  if (typeof response !== "string") throw new HostResponseError("stored result without a response");
  const starts = log.entries.filter((e): e is AuditEntry<"enclave-started"> => e.kind === "enclave-started");
  for (const s of starts) {
    try {
      const { body } = await verifyResponse<{ head?: unknown }>(response, s.data.keys.signingKey);
      if (!isHead(body?.head)) throw new HostResponseError("stored result without an audit head");
      return body.head as AuditHead;
    } catch (e) {
      if (!(e instanceof ResponseSignatureError)) throw e;
    }
  }
  throw new ResponseSignatureError("a stored result is not signed by any instance of the log");
}

export interface AuditVerifyOptions {
  /** Ids of stored query runs this party was told of: their signed heads must be in the log. */
  results?: readonly string[];
  /** Also every run the host lists with a result for this party (GET /results?party=…). */
  listed?: boolean;
}

/** Online audit: the host's log, under this client's policy and remembered heads. */
export async function auditVerify(
  client: CleanroomClient,
  options: AuditVerifyOptions = {},
): Promise<VerifiedAuditLog> {
  const entries = await fetchAuditLog(client.host);
  const log = await verifyAuditWithState(entries, client.state, client.policy);
  const responses: unknown[] = [];
  for (const id of options.results ?? []) {
    if (!RESULT_ID.test(id)) throw new HostResponseError("result id");
    const meta = await client.host.getJson<{ response?: unknown }>(`/results/${id}`);
    responses.push(meta?.response);
  }
  if (options.listed) {
    const party = encodeURIComponent(client.partyId);
    const reply = await client.host.getJson<{ results?: unknown }>(
      `/results?party=${party}&limit=${MAX_LISTED}`,
    );
    if (!Array.isArray(reply?.results)) throw new HostResponseError("result listing is not a list");
    for (const run of reply.results as { response?: unknown }[]) responses.push(run?.response);
  }
  // A signed answer the host still serves points into the log: a log cut before it is refused.
  for (const response of responses) {
    const head = await resultHead(response, log);
    requireHeads(log, [head]);
    await client.state.observeHead(head);
  }
  return { entries: log.entries, head: log.head };
}
