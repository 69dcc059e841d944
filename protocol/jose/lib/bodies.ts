/** Structural checks of request bodies (shapes only; the enclave checks meaning against the contract). */
import type { RequestBodies, RequestKind } from "../messages.js";
import { DATASET_ID, HEX64, isPlainObject, keysProblem, PARTY_ID } from "./shape.js";

const FILE_KEY = /^[A-Za-z0-9_-]{22}$/;
/** 32 bytes in unpadded base64url (the last character carries 4 bits: canonical spellings only). */
const SEAL_SHARE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const MAX_PARAMS = 64;

/** An audit head {seq >= 0, hash: 64 hex}. */
export function isHead(v: unknown): boolean {
  return (
    isPlainObject(v) &&
    !keysProblem(v, ["seq", "hash"]) &&
    Number.isSafeInteger(v.seq) &&
    (v.seq as number) >= 0 &&
    typeof v.hash === "string" &&
    HEX64.test(v.hash)
  );
}

function isParams(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= MAX_PARAMS &&
    entries.every(
      ([, x]) =>
        typeof x === "string" || typeof x === "boolean" || (typeof x === "number" && Number.isFinite(x)),
    )
  );
}

const CHECKS: { [K in RequestKind]: (b: Record<string, unknown>) => boolean } = {
  grant: (b) =>
    !keysProblem(
      b,
      ["dataset", "ciphertextDigest", "sealShare"],
      ["fileKey", "auditHead", "previous", "mode"],
    ) &&
    typeof b.sealShare === "string" &&
    SEAL_SHARE.test(b.sealShare) &&
    typeof b.dataset === "string" &&
    DATASET_ID.test(b.dataset) &&
    typeof b.ciphertextDigest === "string" &&
    HEX64.test(b.ciphertextDigest) &&
    (b.fileKey === undefined || (typeof b.fileKey === "string" && FILE_KEY.test(b.fileKey))) &&
    (b.auditHead === undefined || isHead(b.auditHead)) &&
    (b.previous === undefined || (Number.isSafeInteger(b.previous) && (b.previous as number) >= 1)) &&
    (b.mode === undefined || (b.previous !== undefined && (b.mode === "replace" || b.mode === "append"))),
  query: (b) =>
    !keysProblem(b, ["queryId", "params", "resultFormat"], ["auditHead"]) &&
    typeof b.queryId === "string" &&
    PARTY_ID.test(b.queryId) &&
    isParams(b.params) &&
    (b.resultFormat === "csv" || b.resultFormat === "json") &&
    (b.auditHead === undefined || isHead(b.auditHead)),
};

export function isBody<K extends RequestKind>(kind: K, body: unknown): body is RequestBodies[K] {
  return isPlainObject(body) && CHECKS[kind](body);
}
