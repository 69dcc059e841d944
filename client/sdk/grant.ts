/**
 * Key grant: let the attested enclave decrypt one uploaded file of a dataset this party owns.
 * The age file key travels inside the signed request, inside a JWE to the enclave's attested
 * X25519 key; the host then streams the stored ciphertext to the enclave's ingest. Both signed
 * answers must reply to the grant's nonce; the quality report must hash to the digest the ingest
 * answer signs before it is decrypted.
 */

import { base64url } from "jose";
import { fromBase64 } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { ciphertextDigest } from "../../protocol/audit/query-run.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import { recoverFileKey } from "./age.js";
import type { CleanroomClient } from "./client.js";
import { HostError, HostResponseError, IoError, ResultDigestError } from "./errors.js";
import { sealShare } from "./seal-share.js";

export interface GrantOptions {
  dataset: string;
  /** SHA-256 (hex) of the uploaded age file. */
  ciphertextDigest: string;
  /** The file key; by default unwrapped with the party identity from the header saved at upload. */
  fileKey?: Uint8Array;
  /**
   * The dataset version this load builds on (absent: the first load in this enclave); `mode` says
   * whether its rows replace that version's (default) or are appended to them (docs/INGEST.md).
   */
  previous?: number;
  mode?: "replace" | "append";
  /** Called about every `progressEveryMs` (default 1 s) while the enclave loads the file. */
  onProgress?: (p: LoadProgress) => void;
  progressEveryMs?: number;
  /**
   * Repeats after a lost answer (dropped connection, 502/503/504) before giving up; default 3. A
   * repeated grant is answered with the first load's answer, never loaded twice.
   */
  retries?: number;
}

/** A load in progress, as GET /grants/progress reports it. */
export interface LoadProgress {
  /** Ciphertext bytes the enclave has received, of `total`. */
  bytes: number;
  total: number;
  /** Rows loaded so far. */
  rows: number;
  /** The version the load will make. */
  version: number;
}

export interface GrantResult {
  dataset: string;
  ciphertextDigest: string;
  head: AuditHead;
  /** Rows loaded, from the enclave's signed ingest answer. */
  rows?: number;
  /** The dataset version the load made, how, and the dataset's rows after it (signed too). */
  version?: number;
  mode?: "new" | "replace" | "append";
  totalRows?: number;
  /** The ingest quality report (decrypted with the party identity). */
  quality?: Uint8Array;
}

/** POST /grants answers with the enclave's signed answers to the grant and to the ingest. */
interface GrantReply {
  grant?: { response?: unknown };
  ingest?: { response?: unknown; quality?: unknown };
}

interface GrantBody {
  dataset: string;
  ciphertextDigest: string;
  head: unknown;
}

interface IngestBody extends GrantBody {
  rows: number;
  version: number;
  mode: "new" | "replace" | "append";
  totalRows: number;
  qualityDigest: string;
}

/** Worth repeating the grant: its answer was lost on the way, not refused. */
function answerLost(e: unknown): boolean {
  if (e instanceof IoError) return true;
  return e instanceof HostError && (e.status === 502 || e.status === 503 || e.status === 504);
}

export async function grant(client: CleanroomClient, o: GrantOptions): Promise<GrantResult> {
  const ds = client.contract.datasets.find((d) => d.id === o.dataset);
  if (!ds) throw new UsageError("grant: not a dataset of the contract");
  if (ds.owner !== client.partyId) throw new UsageError("grant: dataset owned by another party");
  if (!/^[0-9a-f]{64}$/.test(o.ciphertextDigest)) throw new UsageError("grant: digest must be 64 hex");
  if (o.mode !== undefined && o.previous === undefined) {
    throw new UsageError("grant: --replace/--append name the version they build on");
  }
  const fileKey = o.fileKey ?? (await storedFileKey(client, o.ciphertextDigest));
  const retries = o.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    const polling = o.onProgress ? pollProgress(client, o) : undefined;
    try {
      return await grantOnce(client, o, fileKey);
    } catch (e) {
      if (!answerLost(e) || attempt >= retries) throw e;
      // The enclave may still be loading: the repeat waits for that load's answer.
      await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
    } finally {
      polling?.stop();
    }
  }
}

/** Asks the host for the load's progress until stopped; a failed poll is skipped, not fatal. */
function pollProgress(client: CleanroomClient, o: GrantOptions): { stop: () => void } {
  const query = `dataset=${encodeURIComponent(o.dataset)}&digest=${o.ciphertextDigest}`;
  const timer = setInterval(() => {
    client.host.getJson<{ loading?: boolean } & Partial<LoadProgress>>(`/grants/progress?${query}`).then(
      (p) => {
        if (p?.loading !== true) return;
        const n = (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : 0);
        o.onProgress?.({ bytes: n(p.bytes), total: n(p.total), rows: n(p.rows), version: n(p.version) });
      },
      () => undefined,
    );
  }, o.progressEveryMs ?? 1000);
  return { stop: () => clearInterval(timer) };
}

async function grantOnce(
  client: CleanroomClient,
  o: GrantOptions,
  fileKey: Uint8Array,
): Promise<GrantResult> {
  return client.withEnclave(async (enclave) => {
    // The last head this party saw: after a restart it shows the enclave the restored log holds it.
    const seen = await client.state.highestHead();
    const req = await client.seal(
      "grant",
      {
        dataset: o.dataset,
        ciphertextDigest: o.ciphertextDigest,
        fileKey: base64url.encode(fileKey),
        sealShare: await sealShare(client.keys.ageIdentity, client.contractDigest),
        ...(seen ? { auditHead: seen } : {}),
        ...(o.previous !== undefined ? { previous: o.previous, mode: o.mode ?? "replace" } : {}),
      },
      enclave,
    );
    const reply = await client.send<GrantReply>(
      "/grants",
      { jwe: req.jwe, dataset: o.dataset, digest: o.ciphertextDigest },
      req,
      enclave,
      { long: true },
    );
    const granted = await client.verifyResponse<GrantBody>(reply?.grant?.response, enclave, req.nonce);
    checkNames(granted.body, o);
    const result: GrantResult = {
      dataset: o.dataset,
      ciphertextDigest: o.ciphertextDigest,
      head: await client.state.answeredHead(granted.body.head),
    };
    const loaded = await client.verifyResponse<IngestBody>(reply.ingest?.response, enclave, req.nonce);
    checkNames(loaded.body, o);
    if (!Number.isSafeInteger(loaded.body.rows)) throw new EnvelopeError("ingest answer without rows");
    const { version, mode, totalRows } = loaded.body;
    const expected = o.previous === undefined ? "new" : (o.mode ?? "replace");
    if (version !== (o.previous ?? 0) + 1 || mode !== expected || !Number.isSafeInteger(totalRows)) {
      throw new EnvelopeError("ingest answer names another version than the grant asked for");
    }
    result.head = await client.state.answeredHead(loaded.body.head);
    result.rows = loaded.body.rows;
    result.version = version;
    result.mode = mode;
    result.totalRows = totalRows;
    result.quality = await openQuality(client, reply.ingest?.quality, loaded.body.qualityDigest);
    return result;
  });
}

/** The quality report: its age file checked against the signed digest, decrypted, unpadded. */
async function openQuality(client: CleanroomClient, quality: unknown, digest: unknown): Promise<Uint8Array> {
  if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new EnvelopeError("ingest answer without a quality report digest");
  }
  let sealed: Uint8Array;
  try {
    sealed = fromBase64(quality as string);
  } catch {
    throw new HostResponseError("ingest answer without its quality report");
  }
  if ((await ciphertextDigest(sealed)) !== digest) {
    throw new ResultDigestError("quality report does not match the signed digest");
  }
  const plain = await client.decrypt(sealed, client.keys.ageIdentity);
  // The enclave pads the JSON with trailing spaces (enclave/load.ts); they carry nothing.
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0x20) end--;
  return plain.subarray(0, end);
}

function checkNames(body: GrantBody, o: GrantOptions): void {
  if (body?.dataset !== o.dataset || body.ciphertextDigest !== o.ciphertextDigest) {
    throw new EnvelopeError("enclave answer names another dataset or file");
  }
}

async function storedFileKey(client: CleanroomClient, digest: string): Promise<Uint8Array> {
  const record = await client.state.upload(digest);
  if (!record) throw new UsageError("grant: no upload record for this digest (pass the file key)");
  let header: Uint8Array;
  try {
    header = fromBase64(record.header);
  } catch {
    throw new UsageError("upload record: header is not base64");
  }
  return recoverFileKey(header, client.keys.ageIdentity);
}
