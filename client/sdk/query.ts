/**
 * Run an approved query: a signed request (carrying the highest audit head this party has
 * seen) encrypted to the enclave; the enclave's signed answer is checked for signer, nonce and
 * head; the result, age-encrypted to this party alone, must hash to the digest it signed.
 */
import { sha256, toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import type { ParamValue } from "../../protocol/jose/messages.js";
import type { CleanroomClient } from "./client.js";
import { parseCsv } from "./csv.js";
import { HostResponseError, ResultDigestError } from "./errors.js";

export type ResultFormat = "csv" | "json";

export interface QueryOptions {
  queryId: string;
  params: Record<string, ParamValue>;
  format: ResultFormat;
}

/** The enclave's signed description of a run (docs/PROTOCOL.md §7). */
export interface QueryResponseBody {
  queryId: string;
  requester: string;
  paramsDigest: string;
  resultDigest: string;
  format: ResultFormat;
  rows: number;
  groupsSuppressed: number;
  epsilon: number;
  head: AuditHead;
}

export interface QueryResult {
  /** The host's id for this run's stored results. */
  id: string;
  response: QueryResponseBody;
  /** Absent when this party is not a recipient of the query. */
  data?: Uint8Array;
  /** CSV: records (header first) as strings; JSON: the parsed value. */
  rows?: string[][] | unknown;
}

interface QueryReply {
  id?: unknown;
  response?: unknown;
}

export async function query(client: CleanroomClient, o: QueryOptions): Promise<QueryResult> {
  const approved = client.contract.queries.find((q) => q.id === o.queryId);
  if (!approved) throw new UsageError("query: not an approved query of the contract");
  if (!approved.runners.includes(client.partyId)) throw new UsageError("query: this party may not run it");
  if (o.format !== "csv" && o.format !== "json") throw new UsageError("query: format must be csv or json");
  return client.withEnclave(async (enclave) => {
    const seen = await client.state.highestHead();
    const req = await client.seal(
      "query",
      { queryId: o.queryId, params: o.params, resultFormat: o.format, ...(seen ? { ledgerHead: seen } : {}) },
      enclave,
    );
    const reply = await client.host.postJson<QueryReply>("/queries", { jwe: req.jwe });
    const { body } = await client.verifyResponse<QueryResponseBody>(reply?.response, enclave, req.nonce);
    if (body?.queryId !== o.queryId || body.requester !== client.partyId || body.format !== o.format) {
      throw new EnvelopeError("enclave answer is for another query");
    }
    if (typeof body.resultDigest !== "string" || !/^[0-9a-f]{64}$/.test(body.resultDigest)) {
      throw new EnvelopeError("enclave answer without result digest");
    }
    await client.observeHead(body.head);
    if (typeof reply.id !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(reply.id)) {
      throw new HostResponseError("query answer without a result id");
    }
    const result: QueryResult = { id: reply.id, response: body };
    if (!approved.recipients.includes(client.partyId)) return result;
    const ciphertext = await client.host.getBytes(`/results/${reply.id}/${client.partyId}`);
    const data = await client.decrypt(ciphertext, client.keys.ageIdentity);
    if (toHex(await sha256(data)) !== body.resultDigest)
      throw new ResultDigestError("result does not match the signed digest");
    result.data = data;
    result.rows = parseResult(data, o.format);
    return result;
  });
}

function parseResult(data: Uint8Array, format: ResultFormat): string[][] | unknown {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  if (format === "csv") return parseCsv(text);
  try {
    return JSON.parse(text);
  } catch {
    throw new EnvelopeError("result is not JSON");
  }
}
