/**
 * The fuzz targets: each product parser or envelope check, fed inputs near real ones (vectors,
 * fresh valid encodings) and random bytes. Every target must return or throw a CleanroomError.
 * The signed inputs (request JWS and its JWE, response JWS, audit entries, contract approvals,
 * evidence bundles) have an oracle besides: a mutation is refused, or it is the original itself
 * and decodes to exactly what the original does (harness.ts `sameAsSeed`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { CompactSign } from "jose";
import { bindingData, type EnclaveKeys, keysDigest } from "../../attestation/binding.js";
import { toHex } from "../../attestation/bytes.js";
import {
  bundleEvidence,
  type EvidenceBundle,
  type EvidencePolicy,
  unbundleEvidence,
  verifyEvidenceBundle,
} from "../../attestation/evidence.js";
import { decodeCoseSign1, parseNitro } from "../../attestation/nitro/index.js";
import type { VerificationResult } from "../../attestation/result.js";
import { createSimPlatform, type SimPlatform, simExpected } from "../../attestation/sim/platform.js";
import {
  certsFromTable,
  encodeCertTable,
  GUID_ARK,
  GUID_ASK,
  GUID_VCEK,
  parseCertTable,
} from "../../attestation/snp/certtable.js";
import { parseReport } from "../../attestation/snp/report.js";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { parseHeader } from "../../protocol/age/header.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import { AuditLog } from "../../protocol/audit/log.js";
import { type VerifiedAuditChain, verifyAuditLog } from "../../protocol/audit/verify.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import { signApproval, type VerifiedApprovals, verifyApprovals } from "../../protocol/contract/sign.js";
import type { Contract, Dataset } from "../../protocol/contract/types.js";
import { validateContract, validateContractJson } from "../../protocol/contract/validate.js";
import { decryptAtEnclave } from "../../protocol/jose/decrypt.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import type { RequestPayload, ResponsePayload } from "../../protocol/jose/messages.js";
import { ReplayGuard } from "../../protocol/jose/replay-guard.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { signResponse } from "../../protocol/jose/sign-response.js";
import { verifyRequest } from "../../protocol/jose/verify-request.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import {
  importX25519PrivateKey,
  x25519PublicFromPrivate,
  x25519PublicJwk,
} from "../../protocol/jose/x25519.js";
import { makeContract, makeParty, type TestParty } from "../protocol/fixtures.js";
import { contractOf, type RiskyQuery, riskyQuery } from "./grammar.js";
import { bytesNear, type FuzzTarget, jsonNear, respellings, sameAsSeed, textNear } from "./harness.js";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/", import.meta.url));
const dirsOf = (d: string) =>
  readdirSync(d, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `${d}${e.name}/`);

export function snpReportTarget(): FuzzTarget<Uint8Array> {
  const seeds = dirsOf(`${VECTORS}sev-snp/`).map((d) => new Uint8Array(readFileSync(`${d}report.bin`)));
  return { name: "snp-report", arbitrary: bytesNear(seeds, 2048), run: (b) => parseReport(b) };
}

export function snpCertTableTarget(): FuzzTarget<Uint8Array> {
  const der = (d: string, f: string) => new Uint8Array(readFileSync(`${d}${f}`));
  const seeds = dirsOf(`${VECTORS}sev-snp/`)
    .filter((d) => readdirSync(d).includes("vcek.der"))
    .slice(0, 2)
    .map((d) =>
      encodeCertTable([
        { guid: GUID_VCEK, data: der(d, "vcek.der") },
        { guid: GUID_ASK, data: new Uint8Array([1, 2, 3]) },
        { guid: GUID_ARK, data: new Uint8Array([4, 5]) },
      ]),
    );
  seeds.push(encodeCertTable([]));
  return {
    name: "snp-certtable",
    arbitrary: bytesNear(seeds, 4096),
    run: (b) => certsFromTable(parseCertTable(b)),
  };
}

export function nitroTarget(): FuzzTarget<Uint8Array> {
  const seeds = dirsOf(`${VECTORS}nitro/`).map((d) => new Uint8Array(readFileSync(`${d}attestation.cbor`)));
  return {
    name: "nitro-cose-cbor",
    arbitrary: bytesNear(seeds, 8192),
    run: (b) => {
      try {
        decodeCoseSign1(b);
      } finally {
        parseNitro(b);
      }
    },
  };
}

export async function ageHeaderTarget(): Promise<FuzzTarget<Uint8Array>> {
  const r1 = await identityToRecipient(generateIdentity());
  const r2 = await identityToRecipient(generateIdentity());
  const seeds = [
    (await encryptBytes(new TextEncoder().encode("hello"), [r1])).slice(0, 400),
    (await encryptBytes(new Uint8Array(10), [r1, r2])).slice(0, 600),
  ];
  return { name: "age-header", arbitrary: bytesNear(seeds, 2048), run: (b) => parseHeader(b) };
}

/** The JOSE world: two parties, a contract, an enclave X25519 key and ES256 signing key. */
export interface JoseWorld {
  contract: Contract;
  digest: string;
  parties: TestParty[];
  enclavePrivate: CryptoKey;
  enclavePublicJwk: JsonWebKey;
  enclaveSigning: TestParty;
  /** The keys digest requests are addressed to (their `aud`). */
  audience: string;
}

export async function joseWorld(): Promise<JoseWorld> {
  const parties = [await makeParty("advertiser"), await makeParty("publisher")];
  const contract = makeContract(parties);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const enclaveSigning = await makeParty("enclave");
  const enclaveAge = await identityToRecipient(generateIdentity());
  return {
    contract,
    digest: (await contractDigest(contract)).hex,
    parties,
    enclavePrivate: await importX25519PrivateKey(raw),
    enclavePublicJwk: x25519PublicJwk(await x25519PublicFromPrivate(raw)),
    enclaveSigning,
    audience: toHex(await keysDigest({ signingKey: enclaveSigning.publicJwk, ageRecipient: enclaveAge })),
  };
}

async function validRequest(w: JoseWorld, seq: number): Promise<string> {
  return signRequest(
    "query",
    { queryId: "conversions-by-campaign", params: { since: "2024-01-01" }, resultFormat: "json" },
    {
      partyId: "advertiser",
      privateKey: w.parties[0]!.privateKey,
      contractDigest: w.digest,
      audience: w.audience,
      counter: seq,
    },
  );
}

/** Mutations of a valid signed text: edits of its characters, and its other base64url spellings. */
function mutationsOf(seeds: string[], maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: textNear(seeds, maxLength) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds.flatMap(respellings)) },
  );
}

/** Each seed with what the product decodes it to (the oracle's expectation). */
async function decodedSeeds<O>(seeds: string[], decode: (s: string) => Promise<O>): Promise<[string, O][]> {
  return Promise.all(seeds.map(async (s) => [s, await decode(s)] as [string, O]));
}

/**
 * compactDecrypt + the nested-JWS checks, on mutated JWE strings (refused, or the original
 * decrypting to its own plaintext) and on valid JWEs of random bytes (decrypting to those bytes).
 */
export async function joseDecryptTarget(
  w: JoseWorld,
): Promise<FuzzTarget<string | Uint8Array, Awaited<ReturnType<typeof decryptAtEnclave>>>> {
  const decrypt = (jwe: string) => decryptAtEnclave(jwe, w.enclavePrivate);
  const seeds = await decodedSeeds(
    [
      await encryptToEnclave(await validRequest(w, 1), w.enclavePublicJwk),
      await encryptToEnclave(new Uint8Array([1, 2, 3]), w.enclavePublicJwk),
    ],
    decrypt,
  );
  const same = sameAsSeed("jose-decrypt", seeds);
  const fresh = new Map<Uint8Array, string>();
  return {
    name: "jose-decrypt",
    arbitrary: fc.oneof(
      mutationsOf(
        seeds.map(([s]) => s),
        4096,
      ),
      fc.uint8Array({ maxLength: 256 }),
    ),
    codes: ["ERR_ENVELOPE"],
    run: async (input) => {
      if (typeof input === "string") return decrypt(input);
      const jwe = await encryptToEnclave(input, w.enclavePublicJwk);
      fresh.set(input, jwe);
      return decrypt(jwe);
    },
    oracle: (input, out) => {
      if (typeof input === "string") return same(input, out);
      const plaintext = Buffer.from(out.plaintext);
      if (!plaintext.equals(input) || out.jws !== undefined) {
        throw new Error("jose-decrypt: a fresh JWE did not decrypt to its own plaintext");
      }
    },
  };
}

type VerifyInput = { text: string } | { header: unknown; payload: unknown };

/**
 * verifyRequest on mutated JWS strings (refused, or the original decoding to its own payload),
 * and on correctly signed JWSs whose header or payload is a mutation of a valid one: the
 * signature passes, so the shape checks behind it are reached, and what passes them must be
 * exactly the payload that was signed.
 */
export async function joseVerifyTarget(
  w: JoseWorld,
): Promise<FuzzTarget<VerifyInput, RequestPayload | "unsigned">> {
  const verify = (jws: string) =>
    verifyRequest(jws, w.contract, new ReplayGuard(), { contractDigest: w.digest, audience: w.audience });
  const seeds = await decodedSeeds([await validRequest(w, 1)], verify);
  const same = sameAsSeed<RequestPayload | "unsigned">("jose-verify-request", seeds);
  const seed = seeds[0]![0];
  const [h, p] = seed
    .split(".")
    .slice(0, 2)
    .map((s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8")));
  return {
    name: "jose-verify-request",
    arbitrary: fc.oneof(
      mutationsOf([seed], 4096).map((text) => ({ text })),
      fc.tuple(jsonNear(h), jsonNear(p)).map(([header, payload]) => ({ header, payload })),
      jsonNear(p).map((payload) => ({ header: h, payload })),
    ),
    // "unsigned": a header jose will not sign, so the case never reaches the product.
    codes: ["ERR_REQUEST_SIGNATURE", "ERR_REQUEST_AUDIENCE", "ERR_UNKNOWN_PARTY", "ERR_ENVELOPE", "unsigned"],
    run: async (input) => {
      if ("text" in input) return verify(input.text);
      const payload = new TextEncoder().encode(JSON.stringify(input.payload) ?? "null");
      const header = input.header;
      if (header === null || typeof header !== "object" || Array.isArray(header)) return "unsigned"; // jose refuses to sign it
      let jws: string;
      try {
        jws = await new CompactSign(payload)
          .setProtectedHeader({ ...header, alg: "ES256" } as never)
          .sign(w.parties[0]!.privateKey);
      } catch {
        return "unsigned";
      }
      return verify(jws);
    },
    refusal: (out) => (out === "unsigned" ? "unsigned" : undefined),
    oracle: (input, out) => {
      if ("text" in input) return same(input.text, out);
      // Correctly signed by a party: what verifies is exactly the JSON that was signed.
      if (!isDeepStrictEqual(out, JSON.parse(JSON.stringify(input.payload)))) {
        throw new Error("jose-verify-request: a verified payload differs from the one signed");
      }
    },
  };
}

/** verifyResponse with the enclave's key and the request nonce it answers, on mutated response JWSs. */
export async function joseResponseTarget(w: JoseWorld): Promise<FuzzTarget<string, ResponsePayload>> {
  const nonce = "0123456789abcdef0123456789abcdef";
  const verify = (jws: string) => verifyResponse(jws, w.enclaveSigning.publicJwk, { inReplyTo: nonce });
  const body = { digest: "ab".repeat(32), head: { seq: 3, hash: "cd".repeat(32) } };
  const seeds = await decodedSeeds(
    [await signResponse(body, w.enclaveSigning.privateKey, { inReplyTo: nonce })],
    verify,
  );
  return {
    name: "jose-verify-response",
    arbitrary: mutationsOf(
      seeds.map(([s]) => s),
      4096,
    ),
    codes: ["ERR_RESPONSE_SIGNATURE", "ERR_ENVELOPE"],
    run: verify,
    oracle: sameAsSeed("jose-verify-response", seeds),
  };
}

/**
 * The signed lists a party verifies as a whole (audit log, contract approvals): one element is
 * replaced by a mutation of itself; the list is refused, or that element is the original and the
 * list decodes to exactly what the original list does.
 */
export interface SignedListTarget<O> extends FuzzTarget<[number, string], O> {
  /** The valid list the mutations start from. */
  list: readonly string[];
}

async function signedListTarget<O>(
  name: string,
  list: string[],
  verify: (list: string[]) => Promise<O>,
  codes: string[],
): Promise<SignedListTarget<O>> {
  // The oracle's expectation: what the unmutated list verifies to.
  const expected = await verify(list);
  return {
    name,
    list,
    arbitrary: fc
      .nat(list.length - 1)
      .chain((i) => mutationsOf([list[i]!], 16_384).map((text) => [i, text] as [number, string])),
    codes,
    run: ([i, text]) => verify(list.map((s, j) => (j === i ? text : s))),
    oracle: ([i, text], out) => sameAsSeed<O>(name, [[list[i]!, expected as O]])(text, out),
  };
}

/** A simulated platform, an enclave's keys, and the policy a party verifies its evidence with. */
export interface SimWorld {
  sim: SimPlatform;
  signing: TestParty;
  keys: EnclaveKeys;
  policy: EvidencePolicy;
}

export async function simWorld(): Promise<SimWorld> {
  const sim = await createSimPlatform();
  const signing = await makeParty("enclave");
  return {
    sim,
    signing,
    keys: { signingKey: signing.publicJwk, ageRecipient: await identityToRecipient(generateIdentity()) },
    policy: {
      trustedSimRoots: [new Uint8Array(sim.amd.ark.rawData), new Uint8Array(sim.nitro.root.rawData)],
      measurements: [toHex(sim.measurement)],
      pcrs: simExpected(sim).pcrs,
    },
  };
}

/**
 * verifyAuditLog on a three-entry log (enclave-started with its evidence, contract-accepted,
 * grant) with one entry mutated.
 */
export async function auditLogTarget(
  w: JoseWorld,
  s: SimWorld,
): Promise<SignedListTarget<VerifiedAuditChain>> {
  const provider = await createSimProvider({ sim: s.sim });
  const { log, started } = await AuditLog.start({
    signingKey: s.signing.privateKey,
    keys: s.keys,
    attest: provider.getEvidence,
  });
  const accepted = await log.append("contract-accepted", { contract: w.digest });
  const granted = await log.append("grant", {
    dataset: "advertiser_purchases",
    party: "advertiser",
    ciphertextDigest: "ef".repeat(32),
  });
  return signedListTarget(
    "audit-log",
    [started.jws, accepted.jws, granted.jws],
    (entries) => verifyAuditLog(entries, s.policy),
    ["ERR_AUDIT"],
  );
}

/** verifyApprovals on both parties' approvals of the contract, one of them mutated. */
export async function approvalsTarget(w: JoseWorld): Promise<SignedListTarget<VerifiedApprovals>> {
  const approvals = await Promise.all(w.parties.map((p) => signApproval(w.contract, p.id, p.privateKey)));
  return signedListTarget("contract-approvals", approvals, (list) => verifyApprovals(w.contract, list), [
    "ERR_CONTRACT_SIGNATURE",
  ]);
}

/**
 * verifyEvidenceBundle on simulated SEV-SNP and Nitro bundles: JSON mutations of the bundle
 * (any field replaced, removed or given an extra member) and character edits of its base64
 * evidence. A mutation is refused (a result with verified false), or the bundle decodes to
 * exactly the original's content (members nothing reads may differ) and verifies to exactly the
 * original's result.
 */
export async function evidenceTarget(
  s: SimWorld,
): Promise<FuzzTarget<[number, unknown], VerificationResult>> {
  const expected = { nonce: crypto.getRandomValues(new Uint8Array(32)), contractDigest: "ab".repeat(32) };
  const verify = (bundle: unknown) => verifyEvidenceBundle(bundle as EvidenceBundle, expected, s.policy);
  const reportData = await bindingData({ keys: s.keys, ...expected });
  const bundles: EvidenceBundle[] = [];
  for (const platform of ["sev-snp", "nitro"] as const) {
    const provider = await createSimProvider({ sim: s.sim, platform });
    const evidence = await provider.getEvidence(reportData, expected.nonce);
    bundles.push(bundleEvidence(evidence, s.keys, expected.contractDigest, expected.nonce));
  }
  const results = await Promise.all(bundles.map(verify));
  for (const r of results)
    if (!r.verified) throw new Error(`evidence seed refused: ${JSON.stringify(r.errors)}`);
  // What a bundle decodes to: the evidence and certificate bytes, the keys, contract and nonce.
  const decoded = (b: EvidenceBundle) => ({
    ...unbundleEvidence(b),
    keys: b.keys,
    contractDigest: b.contractDigest,
    nonce: b.nonce,
  });
  const originals = bundles.map(decoded);
  return {
    name: "evidence-bundle",
    arbitrary: fc.nat(bundles.length - 1).chain((i) =>
      fc
        .oneof(
          // An object, as the client checks before it verifies (client/sdk/attest.ts).
          jsonNear(bundles[i]!).filter((b) => b !== null && typeof b === "object" && !Array.isArray(b)),
          textNear([bundles[i]!.evidence], 16_384).map((evidence) => ({ ...bundles[i]!, evidence })),
        )
        .map((b) => [i, b] as [number, unknown]),
    ),
    run: ([, bundle]) => verify(bundle),
    refusal: (r) => (r.verified ? undefined : (r.errors[0]?.code ?? "unverified")),
    oracle: ([i, bundle], out) => {
      const got = decoded(bundle as EvidenceBundle);
      if (!isDeepStrictEqual(got, originals[i])) {
        throw new Error(
          `evidence-bundle: accepted a bundle that decodes to other content: ${JSON.stringify(bundle)}`,
        );
      }
      if (!isDeepStrictEqual(out, results[i])) {
        throw new Error("evidence-bundle: the original content verified differently");
      }
    },
  };
}

export async function contractTarget(): Promise<FuzzTarget<string | unknown>> {
  const contract = makeContract([await makeParty("advertiser"), await makeParty("publisher")]);
  const text = JSON.stringify(contract);
  return {
    name: "contract-validate",
    arbitrary: fc.oneof(
      textNear([text], 16_384).map((t) => ({ text: t })),
      jsonNear(contract).map((v) => ({ value: v })),
    ),
    run: (input) => {
      const i = input as { text?: string; value?: unknown };
      return i.text !== undefined ? validateContractJson(i.text) : validateContract(i.value);
    },
  };
}

const ingestColumns: Dataset["columns"] = [
  { name: "id", type: "VARCHAR" },
  { name: "age", type: "INTEGER" },
  { name: "joined", type: "DATE" },
  { name: "seen", type: "TIMESTAMP" },
  { name: "score", type: "DOUBLE" },
];
const hex = (n: number) => n.toString(16).padStart(64, "0");

/** CSV (and Parquet, when a seed file is given) ingest into a real locked engine, one table per case. */
export function ingestTarget(
  engine: SqlEngine,
  format: "csv" | "parquet",
  seeds: Uint8Array[],
): FuzzTarget<{ bytes: Uint8Array; chunk: number }> {
  let n = 0;
  return {
    name: `ingest-${format}`,
    arbitrary: fc.record({ bytes: bytesNear(seeds, 4096), chunk: fc.integer({ min: 1, max: 4096 }) }),
    run: async ({ bytes, chunk }) => {
      n += 1;
      const dataset: Dataset = {
        id: `fuzz_${n}`,
        owner: "acme",
        format,
        columns: ingestColumns,
        identityColumn: "id",
        identityFormat: "sha256-hex",
        analysis: {
          joinColumns: [],
          dimensions: ["age", "joined", "seen"],
          measures: [{ column: "score", aggregates: ["sum"] }],
        },
      };
      const pieces: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += chunk) pieces.push(bytes.subarray(i, i + chunk));
      await ingestDataset(engine, dataset, Readable.from(pieces), { mode: n % 2 ? "reject" : "refuse-all" });
      // Keep the engine small: a loaded table is dropped once checked.
      await engine.connection.run(`DROP TABLE "${dataset.id}"`);
      engine.datasets.delete(dataset.id);
    },
  };
}

export function csvSeeds(): Uint8Array[] {
  const rows = (k: number) =>
    Array.from(
      { length: k },
      (_, i) => `${hex(i)},${20 + i},2024-0${1 + (i % 9)}-1${i % 10},2024-01-01 12:00:0${i % 10},${i}.5\n`,
    ).join("");
  const enc = new TextEncoder();
  return [
    enc.encode(`id,age,joined,seen,score\n${rows(5)}`),
    enc.encode(`id,age,joined,seen,score\r\n"${hex(7)}",,2024-02-29,2024-02-29 00:00:00.123456,-1e10\r\n`),
    enc.encode("id,age,joined,seen,score\n"),
  ];
}

/**
 * The aggregation grammar against forbidden constructs: a valid query with one of them inserted
 * (grammar.ts RISKY) goes through validateContract and checkContractQueries, as a signed contract
 * would. A refusal (a typed error) is the only pass: an admitted query throws, and fast-check
 * shrinks it to the smallest such query.
 */
export async function grammarRiskTarget(): Promise<FuzzTarget<RiskyQuery>> {
  const parties = makeContract([await makeParty("advertiser"), await makeParty("publisher")]).parties;
  const allowed = ["risky", "uu", ...Array.from({ length: 8 }, (_, i) => [`k${i}`, `v${i}`]).flat()];
  return {
    name: "grammar-risky-constructs",
    arbitrary: riskyQuery,
    run: async (q) => {
      const contract = contractOf(parties, q, allowed);
      validateContract(contract);
      await checkContractQueries(contract);
      throw new Error(`admitted a query with a forbidden construct (${q.construct}): ${q.sql}`);
    },
  };
}
