/**
 * Two parties (advertiser, publisher) with signing keys and age identities, the use-case
 * contract (test/sql/usecases.ts, k = 50) under their keys, and helpers that act as their
 * clients: approvals, sealed requests, encrypted uploads (grant and ingest), result decryption.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { base64url } from "jose";
import { sealShare } from "../../client/sdk/seal-share.js";
import type { EvidenceProvider } from "../../enclave/platform/provider.js";
import { Enclave } from "../../enclave/runtime.js";
import type { EngineOptions } from "../../enclave/sql/engine.js";
import { openHeader } from "../../protocol/age/envelope.js";
import { parseHeader } from "../../protocol/age/header.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { decryptBytes, encryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { parseReceipt, type QueryReceipt } from "../../protocol/audit/query-run.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import { signApproval } from "../../protocol/contract/sign.js";
import type { ApprovedQuery, Contract, Dataset, OutputPolicy } from "../../protocol/contract/types.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import type { GrantBody, RequestBodies, RequestKind } from "../../protocol/jose/messages.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { makeParty, type TestParty } from "../protocol/fixtures.js";
import { dataset } from "../sql/helpers.js";
import { exposures, K, purchases, useCaseQueries } from "../sql/usecases.js";
import { simProvider } from "./sim.js";

export interface Party extends TestParty {
  identity: string;
  recipient: string;
  /** The party's persistent request counter. */
  seq: number;
}

export async function makeAgeParty(id: string): Promise<Party> {
  const identity = generateIdentity();
  return { ...(await makeParty(id)), identity, recipient: await identityToRecipient(identity), seq: 0 };
}

export async function makeParties(): Promise<{ advertiser: Party; publisher: Party }> {
  return { advertiser: await makeAgeParty("advertiser"), publisher: await makeAgeParty("publisher") };
}

export function contractFor(
  parties: Party[],
  queries: ApprovedQuery[] = useCaseQueries,
  datasets = [purchases, exposures],
): Contract {
  return {
    version: 1,
    id: "acme-news-q3",
    parties: parties.map((p) => ({
      id: p.id,
      name: p.id,
      signingKey: p.publicJwk,
      ageRecipient: p.recipient,
    })),
    datasets,
    queries,
  };
}

export async function approvals(contract: Contract, parties: Party[]): Promise<string[]> {
  return Promise.all(parties.map((p) => signApproval(contract, p.id, p.privateKey)));
}

export interface StartOptions {
  releaseQuantumMs?: number;
  /** Default: the simulated platform shared by the test process (sim.ts). */
  provider?: EvidenceProvider;
  /** Over the defaults (512 MB, 2 threads). */
  engineOptions?: EngineOptions;
}

export async function startEnclave(o: StartOptions = {}): Promise<Enclave> {
  return Enclave.start({
    provider: o.provider ?? (await simProvider()),
    engineOptions: { memoryLimit: "512MB", threads: 2, ...o.engineOptions },
    ...(o.releaseQuantumMs !== undefined ? { releaseQuantumMs: o.releaseQuantumMs } : {}),
  });
}

/** The contract accepted with the approvals of every one of `parties`. */
export async function admit(
  enclave: Enclave,
  contract: Contract,
  parties: Party[],
): Promise<{ response: string }> {
  return enclave.acceptContract({ contract, approvals: await approvals(contract, parties) });
}

export interface World {
  enclave: Enclave;
  contract: Contract;
  advertiser: Party;
  publisher: Party;
}

/**
 * A fresh enclave (given the audit `restore` first, if any) that has accepted the contract over
 * `queries` and `datasets`, approved by both parties (new ones unless given).
 */
export async function openWorld(
  queries?: ApprovedQuery[],
  datasets?: Dataset[],
  o: StartOptions & { parties?: { advertiser: Party; publisher: Party }; restore?: string[] } = {},
): Promise<World> {
  const { advertiser, publisher } = o.parties ?? (await makeParties());
  const contract = contractFor([advertiser, publisher], queries, datasets);
  const enclave = await startEnclave(o);
  if (o.restore) await enclave.restoreAudit({ entries: o.restore });
  await admit(enclave, contract, [advertiser, publisher]);
  return { enclave, contract, advertiser, publisher };
}

/** A grant body of `party` with its seal share for `contract`, as its client sends it. */
export async function grantBody(
  contract: Contract,
  party: Party,
  body: Omit<GrantBody, "sealShare">,
): Promise<GrantBody> {
  return { ...body, sealShare: await sealShare(party.identity, (await contractDigest(contract)).hex) };
}

/** A signed request from `party`, sealed to the enclave's attested X25519 key. */
export async function sealed<K extends RequestKind>(
  enclave: Enclave,
  contract: Contract,
  party: Party,
  kind: K,
  body: RequestBodies[K],
): Promise<string> {
  party.seq += 1;
  const jws = await signRequest(kind, body, {
    partyId: party.id,
    privateKey: party.privateKey,
    contractDigest: (await contractDigest(contract)).hex,
    audience: enclave.keys.keysDigest,
    counter: party.seq,
  });
  return encryptToEnclave(jws, enclave.keys.jwePublicJwk);
}

export const sha256hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** The bytes in pieces of `size`, as a stream (a relay can cut them anywhere). */
export function pieces(bytes: Uint8Array, size = 10_000): Readable {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return Readable.from(out);
}

/** Encrypts to the party's own recipient and recovers the file key for a grant, as its client would. */
export async function encryptToSelf(
  party: Party,
  plaintext: Uint8Array,
): Promise<{ ciphertext: Uint8Array; fileKey: string }> {
  const ciphertext = await encryptBytes(plaintext, [party.recipient]);
  const { header } = parseHeader(ciphertext);
  return { ciphertext, fileKey: base64url.encode(await openHeader(header, [party.identity])) };
}

/**
 * `owner` grants `dataset` and the enclave ingests `plaintext` in pieces of `pieceSize`: encrypted
 * to the owner's own recipient with the file key in the grant, or (`toEnclave`) to the enclave's.
 */
export async function serveCsv(
  enclave: Enclave,
  contract: Contract,
  owner: Party,
  dataset: string,
  plaintext: string | Uint8Array,
  o: { toEnclave?: boolean; pieceSize?: number; auditHead?: AuditHead } = {},
) {
  const bytes = typeof plaintext === "string" ? utf8(plaintext) : plaintext;
  const { ciphertext, fileKey } = o.toEnclave
    ? { ciphertext: await encryptBytes(bytes, [enclave.keys.publicKeys.ageRecipient]), fileKey: undefined }
    : await encryptToSelf(owner, bytes);
  const digest = sha256hex(ciphertext);
  const granted = await enclave.handleRequest(
    await sealed(
      enclave,
      contract,
      owner,
      "grant",
      await grantBody(contract, owner, {
        dataset,
        ciphertextDigest: digest,
        ...(fileKey ? { fileKey } : {}),
        ...(o.auditHead ? { auditHead: o.auditHead } : {}),
      }),
    ),
  );
  const loaded = await enclave.ingest(dataset, digest, pieces(ciphertext, o.pieceSize));
  return { digest, granted, loaded };
}

/** An aggregation without parameters that the advertiser receives (and runs, unless `runners` say otherwise). */
export function advertiserAggregation(
  id: string,
  sql: string,
  policy: Omit<OutputPolicy, "kind">,
  runners = ["advertiser"],
): ApprovedQuery {
  return {
    id,
    sql,
    parameters: [],
    runners,
    recipients: ["advertiser"],
    policy: { kind: "aggregation", ...policy },
  };
}

/** An advertiser's people, each in a group `grp`. */
export const people: Dataset = dataset(
  "people",
  "advertiser",
  { user_id: "VARCHAR", grp: "VARCHAR" },
  { dimensions: ["grp"] },
  "sha256-hex",
);

/** People per group at k = K, with `policy` over that. */
export const peopleByGroup = (id: string, policy: Partial<OutputPolicy> = {}, runners?: string[]) =>
  advertiserAggregation(
    id,
    "SELECT p.grp AS grp, count(DISTINCT p.user_id) AS n FROM people p GROUP BY p.grp",
    { minDistinctIdentities: K, allowedColumns: ["grp", "n"], ...policy },
    runners,
  );

/** A publisher's members, each in a tier. */
export const members: Dataset = dataset(
  "members",
  "publisher",
  { user_id: "VARCHAR", tier: "VARCHAR" },
  { dimensions: ["tier"] },
  "sha256-hex",
);

/** Members per tier at k = 10, with `policy` over that. */
export const membersByTier = (id: string, policy: Partial<OutputPolicy> = {}) =>
  advertiserAggregation(
    id,
    "SELECT m.tier AS tier, count(DISTINCT m.user_id) AS n FROM members m GROUP BY m.tier",
    { minDistinctIdentities: 10, allowedColumns: ["tier", "n"], ...policy },
  );

/** A publisher's dataset of who referred whom (referrer a dimension). */
export const referrals: Dataset = dataset(
  "referrals",
  "publisher",
  { user_id: "VARCHAR", referrer: "VARCHAR" },
  { dimensions: ["referrer"] },
  "sha256-hex",
);

/**
 * Every referrer's group over a self-join of referrals on the identity: its work grows with the
 * square of one person's rows. k = 10, no differencing guard, so each run releases the same answer.
 */
export const referrersSelfJoin: ApprovedQuery = advertiserAggregation(
  "referrers-self-join",
  `SELECT a.referrer AS referrer, count(DISTINCT a.user_id) AS n
FROM referrals a JOIN referrals b ON a.user_id = b.user_id
GROUP BY a.referrer`,
  { minDistinctIdentities: 10, allowedColumns: ["referrer", "n"], differencingGuard: false },
);

/** The keys of a query answer's signed body: no count or digest of a plaintext among them. */
export const RESPONSE_BODY_KEYS = [
  "epsilon",
  "format",
  "head",
  "paramsDigest",
  "queryId",
  "receipts",
  "requester",
  "resultDigests",
  "versions",
];

export async function openResult(party: Party, b64: string): Promise<string> {
  return new TextDecoder().decode(
    await decryptBytes(new Uint8Array(Buffer.from(b64, "base64")), party.identity),
  );
}

/** Decrypts and parses a party's receipt from a query answer's `receipts` (throws if malformed). */
export async function openReceipt(party: Party, b64: string): Promise<QueryReceipt> {
  const receipt = parseReceipt(
    await decryptBytes(new Uint8Array(Buffer.from(b64, "base64")), party.identity),
  );
  if (!receipt) throw new Error("malformed receipt");
  return receipt;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
