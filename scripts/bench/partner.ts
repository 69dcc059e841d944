/**
 * The partner side of the in-process measurements: the two demo parties' keys, their approved
 * contract, signed requests sealed to an in-process Enclave, and age encryption of a file (the
 * partner's own cost, timed apart from the enclave's).
 */
import { createHash } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, openSync, readSync } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { base64url } from "jose";
import {
  approveContract,
  contractDigestHex,
  generatePartyKeys,
  loadPartyKeys,
  type PartyKeys,
} from "../../client/sdk/index.js";
import { sealShare } from "../../client/sdk/seal-share.js";
import type { Enclave } from "../../enclave/runtime.js";
import { openHeader } from "../../protocol/age/envelope.js";
import { MAX_HEADER_BYTES, parseHeader } from "../../protocol/age/header.js";
import { encryptChunks } from "../../protocol/age/stream-node.js";
import type { Contract } from "../../protocol/contract/types.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import type { GrantBody, RequestBodies, RequestKind } from "../../protocol/jose/messages.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { PARTIES, type PartyId } from "../demo/flow.js";
import { useCaseContract } from "../demo/usecases.js";

export interface Parties {
  contract: Contract;
  digest: string;
  keys: Record<PartyId, PartyKeys>;
}

/** Both parties' keys, and the demo contract accepted by `enclave` with both approvals. */
export async function admitParties(enclave: Enclave): Promise<Parties> {
  const keys = {} as Record<PartyId, PartyKeys>;
  for (const id of PARTIES) keys[id] = await loadPartyKeys(await generatePartyKeys());
  const contract = useCaseContract(
    PARTIES.map((id) => ({
      id,
      name: id,
      signingKey: keys[id].signingKey,
      ageRecipient: keys[id].ageRecipient,
    })),
  );
  const approvals = await Promise.all(PARTIES.map((id) => approveContract(contract, keys[id])));
  await enclave.acceptContract({ contract, approvals });
  return { contract, digest: await contractDigestHex(contract), keys };
}

const counters = new Map<string, number>();

/** A grant body of `party` with its seal share, as its client sends it. */
export async function grantBody(
  p: Parties,
  party: PartyId,
  body: Omit<GrantBody, "sealShare">,
): Promise<GrantBody> {
  return { ...body, sealShare: await sealShare(p.keys[party].ageIdentity, p.digest) };
}

/** A signed request from `party`, inside a JWE to the enclave, with the party's next counter. */
export async function seal<K extends RequestKind>(
  p: Parties,
  enclave: Enclave,
  party: PartyId,
  kind: K,
  body: RequestBodies[K],
): Promise<string> {
  const key = `${p.digest}/${party}`;
  const counter = (counters.get(key) ?? 0) + 1;
  counters.set(key, counter);
  const jws = await signRequest(kind, body, {
    partyId: party,
    privateKey: p.keys[party].privateKey,
    contractDigest: p.digest,
    audience: enclave.keys.keysDigest,
    counter,
  });
  return encryptToEnclave(jws, enclave.keys.jwePublicJwk);
}

export interface Encrypted {
  path: string;
  digest: string;
  bytes: number;
}

/** age-encrypts `source` (text chunks or a file's bytes) to `recipient` into `out`, hashing as it goes. */
export async function encryptToFile(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  recipient: string,
  out: string,
): Promise<Encrypted> {
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  // On disk before the enclave's load is timed (flush: fsync before close). A partner's upload is
  // complete before the grant; without this the kernel wrote gigabytes of fresh ciphertext back
  // during the timed load, about 3 s of system time and 2 s of wall time at 10M rows here.
  const file = createWriteStream(out, { mode: 0o600, flush: true });
  await pipeline(encryptChunks(source, [recipient]), tap, file);
  return { path: out, digest: hash.digest("hex"), bytes };
}

export function encryptFile(path: string, recipient: string, out: string): Promise<Encrypted> {
  return encryptToFile(createReadStream(path, { highWaterMark: 1 << 20 }), recipient, out);
}

/** Text chunks as bytes, for encrypting generated data without writing the plaintext. */
export function* utf8(chunks: Iterable<string>): Generator<Uint8Array> {
  for (const c of chunks) yield Buffer.from(c);
}

/**
 * The file key of the age file at `path`, unwrapped from its header with the owner's `identity`:
 * what the SDK puts in a grant for a file the owner encrypted to itself (client/sdk/grant.ts).
 */
export async function fileKeyOf(path: string, identity: string): Promise<string> {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(MAX_HEADER_BYTES + 1);
    const n = readSync(fd, head, 0, head.length, 0);
    const { header } = parseHeader(head.subarray(0, n), MAX_HEADER_BYTES);
    return base64url.encode(await openHeader(header, [identity]));
  } finally {
    closeSync(fd);
  }
}
