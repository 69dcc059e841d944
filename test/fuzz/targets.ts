/**
 * The fuzz targets: each product parser or envelope check, fed inputs near real ones (vectors,
 * fresh valid encodings) and random bytes. Every target must return or throw a CleanroomError.
 */
import { readdirSync, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { CompactSign } from "jose";
import { decodeCoseSign1, parseNitro } from "../../attestation/nitro/index.js";
import {
  certsFromTable,
  encodeCertTable,
  GUID_ARK,
  GUID_ASK,
  GUID_VCEK,
  parseCertTable,
} from "../../attestation/snp/certtable.js";
import { parseReport } from "../../attestation/snp/report.js";
import { checkContractQueries } from "../../enclave/sql/check.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import { parseHeader } from "../../protocol/age/header.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract, Dataset } from "../../protocol/contract/types.js";
import { validateContract, validateContractJson } from "../../protocol/contract/validate.js";
import { decryptAtEnclave } from "../../protocol/jose/decrypt.js";
import { encryptToEnclave } from "../../protocol/jose/encrypt.js";
import { ReplayGuard } from "../../protocol/jose/replay-guard.js";
import { signRequest } from "../../protocol/jose/sign-request.js";
import { verifyRequest } from "../../protocol/jose/verify-request.js";
import {
  importX25519PrivateKey,
  x25519PublicFromPrivate,
  x25519PublicJwk,
} from "../../protocol/jose/x25519.js";
import { makeContract, makeParty, type TestParty } from "../protocol/fixtures.js";
import { contractOf, type RiskyQuery, riskyQuery } from "./grammar.js";
import { bytesNear, type FuzzTarget, jsonNear, textNear } from "./harness.js";

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

/** The JOSE world: two parties, a contract, an enclave X25519 key. */
export interface JoseWorld {
  contract: Contract;
  digest: string;
  parties: TestParty[];
  enclavePrivate: CryptoKey;
  enclavePublicJwk: JsonWebKey;
}

export async function joseWorld(): Promise<JoseWorld> {
  const parties = [await makeParty("advertiser"), await makeParty("publisher")];
  const contract = makeContract(parties);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  return {
    contract,
    digest: (await contractDigest(contract)).hex,
    parties,
    enclavePrivate: await importX25519PrivateKey(raw),
    enclavePublicJwk: x25519PublicJwk(await x25519PublicFromPrivate(raw)),
  };
}

async function validRequest(w: JoseWorld, seq: number): Promise<string> {
  return signRequest(
    "query",
    { queryId: "conversions-by-campaign", params: { since: "2024-01-01" }, resultFormat: "json" },
    { partyId: "advertiser", privateKey: w.parties[0]!.privateKey, contractDigest: w.digest, counter: seq },
  );
}

/** compactDecrypt + the nested-JWS checks, on mutated JWE strings and on valid JWEs of random bytes. */
export async function joseDecryptTarget(w: JoseWorld): Promise<FuzzTarget<string | Uint8Array>> {
  const seeds = [
    await encryptToEnclave(await validRequest(w, 1), w.enclavePublicJwk),
    await encryptToEnclave(new Uint8Array([1, 2, 3]), w.enclavePublicJwk),
  ];
  return {
    name: "jose-decrypt",
    arbitrary: fc.oneof(textNear(seeds, 4096), fc.uint8Array({ maxLength: 256 })),
    run: async (input) => {
      const jwe = typeof input === "string" ? input : await encryptToEnclave(input, w.enclavePublicJwk);
      return decryptAtEnclave(jwe, w.enclavePrivate);
    },
  };
}

/**
 * verifyRequest on mutated JWS strings, and on correctly signed JWSs whose header or payload is
 * a mutation of a valid one: the signature passes, so the shape checks behind it are reached.
 */
export async function joseVerifyTarget(w: JoseWorld): Promise<FuzzTarget<string | [unknown, unknown]>> {
  const seed = await validRequest(w, 1);
  const [h, p] = seed
    .split(".")
    .slice(0, 2)
    .map((s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8")));
  return {
    name: "jose-verify-request",
    arbitrary: fc.oneof(
      textNear([seed], 4096),
      fc.tuple(jsonNear(h), jsonNear(p)),
      fc.tuple(fc.constant(h), jsonNear(p)),
    ),
    run: async (input) => {
      let jws: string;
      if (typeof input === "string") jws = input;
      else {
        const payload = new TextEncoder().encode(JSON.stringify(input[1]) ?? "null");
        const header = input[0];
        if (header === null || typeof header !== "object" || Array.isArray(header)) return; // jose refuses to sign it
        try {
          jws = await new CompactSign(payload)
            .setProtectedHeader({ ...header, alg: "ES256" } as never)
            .sign(w.parties[0]!.privateKey);
        } catch {
          return;
        }
      }
      return verifyRequest(jws, w.contract, new ReplayGuard(), { contractDigest: w.digest });
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
