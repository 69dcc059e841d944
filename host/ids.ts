/**
 * The only identifiers the host ever turns into file names or enclave paths. Route schemas use
 * the same patterns; the store checks again with the full-string regexes so that no caller can
 * join an unchecked string into a path.
 */
import { BadIdError } from "./errors.js";

/** SHA-256 in lowercase hex: blob ids and digests. */
export const SHA256_HEX = "^[0-9a-f]{64}$";
/** Result ids are 128 random bits chosen by the host. */
export const RESULT_ID = "^[0-9a-f]{32}$";
/** PROTOCOL.md conventions. */
export const PARTY_ID = "^[a-z][a-z0-9_-]{0,63}$";
export const DATASET_ID = "^[a-z][a-z0-9_]{0,63}$";
/** Evidence nonce: 16..64 bytes in lowercase hex. */
export const NONCE_HEX = "^(?:[0-9a-f]{2}){16,64}$";

const sha256Re = new RegExp(SHA256_HEX);
const resultRe = new RegExp(RESULT_ID);
const partyRe = new RegExp(PARTY_ID);

export function assertBlobId(id: string): void {
  if (!sha256Re.test(id)) throw new BadIdError("blob id");
}

export function assertResultId(id: string): void {
  if (!resultRe.test(id)) throw new BadIdError("result id");
}

export function assertPartyId(id: string): void {
  if (!partyRe.test(id)) throw new BadIdError("party id");
}
