/**
 * Control-message types: the bodies of party requests and the payload that wraps them.
 * A request is a compact JWS (see sign-request.ts) usually carried inside a JWE to the enclave.
 */

import type { AuditHead } from "../audit/entry.js";

export const REQUEST_KINDS = ["grant", "query"] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** "grant": let the enclave decrypt one uploaded age file of a dataset the signer owns. */
export interface GrantBody {
  dataset: string;
  /** SHA-256 (hex) of the whole uploaded age file, as stored by the host. */
  ciphertextDigest: string;
  /**
   * The age file key (16 bytes, base64url) when the file was encrypted to a recipient other than
   * this enclave's own (e.g. before a restart). Safe only because grants travel inside a JWE to
   * the attested enclave key.
   */
  fileKey?: string;
  /**
   * The owner's seal share for this contract (32 bytes, base64url; client/sdk/seal-share.ts): with
   * the other owners' shares it seals the differencing guard's history (enclave/guard-seal.ts).
   */
  sealShare: string;
  /**
   * The last audit head this party saw. The enclave refuses the grant when its chain does not
   * hold it (a rolled-back log); after a restore, a head of the restored part counts as this
   * party vouching for it (enclave/restore-gate.ts). Owners re-grant after every restart.
   */
  auditHead?: AuditHead;
  /**
   * The dataset version this load builds on, as the owner last saw it (docs/INGEST.md, dataset
   * versions): absent for a first load. The enclave refuses a grant naming another version than
   * its current one, so a stale or repeated refresh cannot land twice.
   */
  previous?: number;
  /** With `previous`: "replace" (default: the new rows instead of the old) or "append". */
  mode?: "replace" | "append";
}

/** Parameter values, typed later against the query's declared parameter types. */
export type ParamValue = string | number | boolean;

/** "query": run an approved query by id. */
export interface QueryBody {
  queryId: string;
  params: Record<string, ParamValue>;
  resultFormat: "csv" | "json";
  /** The last audit head this party saw: as for a grant (GrantBody.auditHead). */
  auditHead?: AuditHead;
}

export interface RequestBodies {
  grant: GrantBody;
  query: QueryBody;
}

/** JWS payload of every party request. */
export interface RequestPayload<K extends RequestKind = RequestKind> {
  kind: K;
  /** Contract digest (hex) the request is made under. */
  contract: string;
  /**
   * Audience: the keys digest (hex, `keysDigest` in attestation/binding.ts) of the enclave
   * instance the request is for, as its verified evidence binds it.
   */
  aud: string;
  /** Signer's party id (equals the header kid). */
  party: string;
  /** Strictly increasing per party. */
  seq: number;
  /** 128 random bits, 32 lowercase hex characters. */
  nonce: string;
  iat: number;
  body: RequestBodies[K];
}

export function requestTyp(kind: RequestKind): string {
  return `cleanroom-${kind}+jws`;
}

export const RESPONSE_TYP = "cleanroom-response+jws";

/** JWS payload of an enclave response. */
export interface ResponsePayload<B = unknown> {
  iat: number;
  /** Nonce of the request this answers, so a host cannot swap responses between requests. */
  inReplyTo?: string;
  body: B;
}

/**
 * Body of the enclave's signed answer to a query request (docs/PROTOCOL.md §7). Nothing in it is
 * data-dependent in the clear: digests are over ciphertexts or keyed, and the counts are inside
 * the receipts (protocol/audit/query-run.ts).
 */
export interface QueryResponseBody {
  queryId: string;
  requester: string;
  format: "csv" | "json";
  /** HMAC-SHA256(run key, canonical params), hex; the run key is in every receipt. */
  paramsDigest: string;
  /** Recipient → SHA-256 (hex) of its age-encrypted result, as the host stores it. */
  resultDigests: Record<string, string>;
  /** Recipient or requester → base64 age file of its receipt (RECEIPT_BYTES of padded JSON). */
  receipts: Record<string, string>;
  /** Epsilon charged to each recipient (0 without DP). */
  epsilon: number;
  /** The version of each loaded dataset the run read (dataset versions, docs/INGEST.md). */
  versions: Record<string, number>;
  head: AuditHead;
}

/**
 * Body of the enclave's signed answer to an ingest, which replies to the grant's nonce
 * (docs/PROTOCOL.md §7). `qualityDigest` is the SHA-256 (hex) of the quality report's age file as
 * it travels next to the answer, so the owner checks the file before decrypting it.
 */
export interface IngestResponseBody {
  dataset: string;
  ciphertextDigest: string;
  /** Rows this load added. */
  rows: number;
  /** The dataset version it made in this instance, how, and the rows of the table after it. */
  version: number;
  mode: "new" | "replace" | "append";
  totalRows: number;
  qualityDigest: string;
  head: AuditHead;
}
