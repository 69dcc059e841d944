/**
 * Key grant: let the attested enclave decrypt one uploaded file of a dataset this party owns.
 * The age file key travels inside the signed request, inside a JWE to the enclave's attested
 * X25519 key; the host then streams the stored ciphertext to the enclave's ingest.
 */

import { base64url } from "jose";
import { fromBase64 } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { EnvelopeError } from "../../protocol/jose/errors.js";
import { recoverFileKey } from "./age.js";
import type { CleanroomClient } from "./client.js";

export interface GrantOptions {
  dataset: string;
  /** SHA-256 (hex) of the uploaded age file. */
  ciphertextDigest: string;
  /** The file key; by default unwrapped with the party identity from the header saved at upload. */
  fileKey?: Uint8Array;
}

export interface GrantResult {
  dataset: string;
  ciphertextDigest: string;
  head: AuditHead;
  /** Rows loaded, from the enclave's signed ingest answer. */
  rows?: number;
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
}

export async function grant(client: CleanroomClient, o: GrantOptions): Promise<GrantResult> {
  const ds = client.contract.datasets.find((d) => d.id === o.dataset);
  if (!ds) throw new UsageError("grant: not a dataset of the contract");
  if (ds.owner !== client.partyId) throw new UsageError("grant: dataset owned by another party");
  if (!/^[0-9a-f]{64}$/.test(o.ciphertextDigest)) throw new UsageError("grant: digest must be 64 hex");
  const fileKey = o.fileKey ?? (await storedFileKey(client, o.ciphertextDigest));
  return client.withEnclave(async (enclave) => {
    const req = await client.seal(
      "grant",
      { dataset: o.dataset, ciphertextDigest: o.ciphertextDigest, fileKey: base64url.encode(fileKey) },
      enclave,
    );
    const reply = await client.host.postJson<GrantReply>("/grants", {
      jwe: req.jwe,
      dataset: o.dataset,
      digest: o.ciphertextDigest,
    });
    const granted = await client.verifyResponse<GrantBody>(reply?.grant?.response, enclave, req.nonce);
    checkNames(granted.body, o);
    const result: GrantResult = {
      dataset: o.dataset,
      ciphertextDigest: o.ciphertextDigest,
      head: await client.observeHead(granted.body.head),
    };
    const loaded = await client.verifyResponse<IngestBody>(reply.ingest?.response, enclave);
    checkNames(loaded.body, o);
    if (!Number.isSafeInteger(loaded.body.rows)) throw new EnvelopeError("ingest answer without rows");
    result.head = await client.observeHead(loaded.body.head);
    result.rows = loaded.body.rows;
    if (typeof reply.ingest?.quality === "string") {
      result.quality = await client.decrypt(fromBase64(reply.ingest.quality), client.keys.ageIdentity);
    }
    return result;
  });
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
