/**
 * Run an approved query: a signed request (carrying the highest audit head this party has
 * seen) encrypted to the enclave; the enclave's signed answer is checked for signer, nonce and
 * head. This party's receipt (inside the signed answer, encrypted to it) gives the run's parameter
 * key, which must reproduce the signed parameter digest from the parameters we sent, and, for a
 * recipient, the counts. A recipient's result ciphertext must hash to the digest signed for it
 * before it is decrypted (docs/PROTOCOL.md §5, "Query runs").
 */

import { fromBase64 } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import {
  ciphertextDigest,
  isDigestMap,
  paramsDigest,
  parseReceipt,
  type QueryReceipt,
  sameSet,
} from "../../protocol/audit/query-run.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import { HEX64, isPlainObject } from "../../protocol/jose/lib/shape.js";
import type { ParamValue, QueryResponseBody } from "../../protocol/jose/messages.js";
import type { CleanroomClient } from "./client.js";
import { parseCsv } from "./csv.js";
import { HostResponseError, ResultDigestError } from "./errors.js";

export type { QueryReceipt, QueryResponseBody };
export type ResultFormat = "csv" | "json";

export interface QueryOptions {
  queryId: string;
  params: Record<string, ParamValue>;
  format: ResultFormat;
}

export interface QueryResult {
  /** The host's id for this run's stored results. */
  id: string;
  response: QueryResponseBody;
  /**
   * This party's receipt: the run's parameter key, and for a recipient the released `rows`
   * (never in the clear anywhere the host can see). No party learns how many groups were held back.
   */
  receipt: QueryReceipt;
  /** The age file this party received (it hashes to `response.resultDigests[party]`). */
  ciphertext?: Uint8Array;
  /** Absent when this party is not a recipient of the query. */
  data?: Uint8Array;
  /** CSV: records (header first) as strings; JSON: the parsed value. */
  rows?: string[][] | unknown;
}

interface QueryReply {
  id?: unknown;
  response?: unknown;
}

const RESULT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export async function query(client: CleanroomClient, o: QueryOptions): Promise<QueryResult> {
  const approved = client.contract.queries.find((q) => q.id === o.queryId);
  if (!approved) throw new UsageError("query: not an approved query of the contract");
  if (!approved.runners.includes(client.partyId)) throw new UsageError("query: this party may not run it");
  if (o.format !== "csv" && o.format !== "json") throw new UsageError("query: format must be csv or json");
  return client.withEnclave(async (enclave) => {
    const seen = await client.state.highestHead();
    const req = await client.seal(
      "query",
      { queryId: o.queryId, params: o.params, resultFormat: o.format, ...(seen ? { auditHead: seen } : {}) },
      enclave,
    );
    const reply = await client.send<QueryReply>("/queries", { jwe: req.jwe }, req, enclave);
    const { body } = await client.verifyResponse<QueryResponseBody>(reply?.response, enclave, req.nonce);
    if (body?.queryId !== o.queryId || body.requester !== client.partyId || body.format !== o.format) {
      throw new EnvelopeError("enclave answer is for another query");
    }
    checkRunBody(body, approved.recipients, client.partyId);
    await client.state.answeredHead(body.head);
    if (typeof reply.id !== "string" || !RESULT_ID.test(reply.id)) {
      throw new HostResponseError("query answer without a result id");
    }
    const receipt = await openReceipt(client, body);
    // The requester knows the parameters it sent: the enclave must have digested exactly those.
    if ((await paramsDigest(receipt.paramsKey, o.params)) !== body.paramsDigest) {
      throw new ResultDigestError("parameters do not match the signed digest");
    }
    return fetchOwnResult(client, reply.id, body, receipt);
  });
}

/**
 * The result of a run another party requested, for a recipient of it: the signed answer the host
 * stored (verified with the attested key), this party's receipt, and its result checked against
 * the signed digest. The parameters are not known here, so `paramsDigest` can be checked with
 * `paramsDigest(receipt.paramsKey, params)` only by a party that is told them.
 */
export async function fetchResult(client: CleanroomClient, id: string): Promise<QueryResult> {
  if (!RESULT_ID.test(id)) throw new UsageError("result id");
  return client.withEnclave(async (enclave) => {
    const meta = await client.host.getJson<{ response?: unknown }>(`/results/${id}`);
    const { body } = await client.verifyResponse<QueryResponseBody>(meta?.response, enclave);
    const approved = client.contract.queries.find((q) => q.id === body?.queryId);
    if (!approved) throw new EnvelopeError("enclave answer names no query of the contract");
    if (!approved.recipients.includes(client.partyId) && body.requester !== client.partyId) {
      throw new UsageError("result: this party is neither a recipient nor the requester");
    }
    checkRunBody(body, approved.recipients, body.requester);
    await client.observeHead(body.head);
    return fetchOwnResult(client, id, body, await openReceipt(client, body));
  });
}

/** The closed shape of a query answer: a digest per recipient, a receipt per party of the run. */
function checkRunBody(body: QueryResponseBody, recipients: readonly string[], requester: string): void {
  if (typeof body.paramsDigest !== "string" || !HEX64.test(body.paramsDigest)) {
    throw new EnvelopeError("enclave answer without parameter digest");
  }
  if (!isDigestMap(body.resultDigests, recipients)) {
    throw new EnvelopeError("enclave answer without a result digest for each recipient");
  }
  const parties = recipients.includes(requester) ? recipients : [...recipients, requester];
  const receipts = body.receipts as unknown;
  if (
    !isPlainObject(receipts) ||
    !sameSet(Object.keys(receipts), parties) ||
    !Object.values(receipts).every((r) => typeof r === "string")
  ) {
    throw new EnvelopeError("enclave answer without a receipt for each party of the run");
  }
}

/** Decrypts and checks this party's receipt from a verified answer. */
async function openReceipt(client: CleanroomClient, body: QueryResponseBody): Promise<QueryReceipt> {
  let sealed: Uint8Array;
  try {
    sealed = fromBase64(body.receipts[client.partyId]!);
  } catch {
    throw new EnvelopeError("receipt is not base64");
  }
  const receipt = parseReceipt(await client.decrypt(sealed, client.keys.ageIdentity));
  const recipient = Object.hasOwn(body.resultDigests, client.partyId);
  if (
    !receipt ||
    receipt.party !== client.partyId ||
    receipt.query !== body.queryId ||
    receipt.requester !== body.requester ||
    receipt.format !== body.format ||
    (receipt.rows !== undefined) !== recipient
  ) {
    throw new EnvelopeError("receipt does not belong to this answer");
  }
  return receipt;
}

/** For a recipient: fetch its ciphertext, check it against its signed digest, then decrypt. */
async function fetchOwnResult(
  client: CleanroomClient,
  id: string,
  response: QueryResponseBody,
  receipt: QueryReceipt,
): Promise<QueryResult> {
  const result: QueryResult = { id, response, receipt };
  if (!Object.hasOwn(response.resultDigests, client.partyId)) return result;
  const ciphertext = await client.host.getBytes(`/results/${id}/${client.partyId}`);
  if ((await ciphertextDigest(ciphertext)) !== response.resultDigests[client.partyId]) {
    throw new ResultDigestError("result does not match the signed digest");
  }
  const data = await client.decrypt(ciphertext, client.keys.ageIdentity);
  result.ciphertext = ciphertext;
  result.data = data;
  result.rows = parseResult(data, response.format);
  return result;
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
