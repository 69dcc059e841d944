/**
 * A dataset owner's seal share for one contract: HMAC-SHA256 keyed with the owner's age identity
 * over the contract digest. It is derived, not stored, so a party that lost its local state
 * still grants the same share, and only that party (and the attested enclave, which receives it
 * inside a grant) ever holds it. With the other owners' shares it seals the enclave's memory of
 * what each guarded query released (enclave/guard-seal.ts).
 */
import { base64url } from "jose";

const LABEL = "cleanroom-guard-share-v1\n";

/** The share as a grant carries it: 32 bytes, unpadded base64url. */
export async function sealShare(ageIdentity: string, contractDigest: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(ageIdentity),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(LABEL + contractDigest));
  return base64url.encode(new Uint8Array(mac));
}
