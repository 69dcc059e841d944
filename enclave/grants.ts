/**
 * Key grants: a dataset owner's permission for the enclave to decrypt one ciphertext (named by
 * its SHA-256) into that dataset's table, optionally with the file key when the file was not
 * encrypted to this enclave, naming the version it replaces or appends to (enclave/loads.ts). A
 * newer grant for the same dataset replaces the older one; a grant is consumed by the load it
 * permitted.
 */
import { base64url } from "jose";
import type { GrantBody } from "../protocol/jose/messages.js";
import type { ActiveContract } from "./contract-state.js";
import { NoGrantError, NotPermittedError } from "./errors.js";

export interface Grant {
  dataset: string;
  party: string;
  ciphertextDigest: string;
  /** The age file key, when the file was encrypted to another recipient. */
  fileKey?: Uint8Array;
  /** Nonce of the grant request, so the ingest response answers it. */
  nonce: string;
  /** The version this load builds on (absent: a first load), and how (default "replace"; loads.ts). */
  previous?: number;
  mode?: "replace" | "append";
}

export class Grants {
  readonly #byDataset = new Map<string, Grant>();

  /** Records `body` from `party`; only the dataset's owner may grant it. */
  record(active: ActiveContract, party: string, body: GrantBody, nonce: string): Grant {
    const dataset = active.dataset(body.dataset);
    if (dataset.owner !== party) throw new NotPermittedError("only the dataset's owner may grant it");
    const grant: Grant = {
      dataset: dataset.id,
      party,
      ciphertextDigest: body.ciphertextDigest,
      nonce,
      ...(body.previous !== undefined ? { previous: body.previous, mode: body.mode ?? "replace" } : {}),
      ...(body.fileKey !== undefined ? { fileKey: base64url.decode(body.fileKey) } : {}),
    };
    this.#byDataset.set(dataset.id, grant);
    return grant;
  }

  /** The grant for exactly this dataset and ciphertext digest. */
  find(dataset: string, ciphertextDigest: string): Grant {
    const g = this.#byDataset.get(dataset);
    if (!g || g.ciphertextDigest !== ciphertextDigest) {
      throw new NoGrantError("no grant from the owner for this ciphertext");
    }
    return g;
  }

  /** Forgets a used grant and wipes its file key. */
  consume(grant: Grant): void {
    if (this.#byDataset.get(grant.dataset) === grant) this.#byDataset.delete(grant.dataset);
    grant.fileKey?.fill(0);
  }
}
