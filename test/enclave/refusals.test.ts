/**
 * Every refusal of the enclave runtime, through the Enclave class, each with the stable code a
 * requester sees. Refused operations leave no state behind (the tests then do the right thing).
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Enclave } from "../../enclave/runtime.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { signApproval } from "../../protocol/contract/sign.js";
import type { ApprovedQuery, Contract, Dataset } from "../../protocol/contract/types.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { exposures, hashedEmail, K, purchases, useCaseCsv } from "../sql/usecases.js";
import {
  approvals,
  contractFor,
  makeParties,
  openResult,
  type Party,
  pieces,
  sealed,
  sha256hex,
  startEnclave,
  utf8,
} from "./world.js";

const csv = useCaseCsv();
let advertiser: Party;
let publisher: Party;
const open: Enclave[] = [];

async function fresh(): Promise<Enclave> {
  const e = await startEnclave();
  open.push(e);
  return e;
}

beforeAll(async () => {
  ({ advertiser, publisher } = await makeParties());
});
afterAll(() => {
  for (const e of open) e.close();
});

const code = (c: string) => expect.objectContaining({ code: c });

describe("contract admission", () => {
  it("refuses an unsigned or partly signed contract, then accepts the fully signed one", async () => {
    const enclave = await fresh();
    const contract = contractFor([advertiser, publisher]);
    const all = await approvals(contract, [advertiser, publisher]);
    await expect(enclave.acceptContract({ contract, approvals: [] })).rejects.toEqual(
      code("ERR_CONTRACT_SIGNATURE"),
    );
    await expect(enclave.acceptContract({ contract, approvals: [all[0]] })).rejects.toEqual(
      code("ERR_CONTRACT_SIGNATURE"),
    );
    // An approval of another contract does not count.
    const other = { ...contract, id: "other" };
    const wrong = await signApproval(other, "publisher", publisher.privateKey);
    await expect(enclave.acceptContract({ contract, approvals: [all[0], wrong] })).rejects.toEqual(
      code("ERR_CONTRACT_SIGNATURE"),
    );
    expect(enclave.health().contractDigest).toBeNull();
    await enclave.acceptContract({ contract, approvals: all });
    // One contract per enclave lifetime.
    await expect(enclave.acceptContract({ contract, approvals: all })).rejects.toEqual(
      code("ERR_CONTRACT_STATE"),
    );
  });

  it("refuses a malformed contract body or document", async () => {
    const enclave = await fresh();
    await expect(enclave.acceptContract({ contract: {}, approvals: [] })).rejects.toEqual(
      code("ERR_CONTRACT"),
    );
    await expect(enclave.acceptContract({ contract: {} })).rejects.toEqual(code("ERR_USAGE"));
  });

  const bad = (id: string, sql: string, allowedColumns: string[]): ApprovedQuery => ({
    id,
    sql,
    parameters: [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: { kind: "aggregate", minDistinctIdentities: K, allowedColumns },
  });
  const refusedQueries: [string, ApprovedQuery][] = [
    [
      "raw identity under aggregation",
      bad("max-id", "SELECT max(p.user_id) AS m FROM advertiser_purchases p", ["m"]),
    ],
    [
      "identity as a group key",
      bad("by-id", "SELECT p.user_id AS u, count(*) AS n FROM advertiser_purchases p GROUP BY p.user_id", [
        "u",
        "n",
      ]),
    ],
    ["read_csv", bad("read", "SELECT count(*) AS n FROM read_csv('/etc/passwd')", ["n"])],
    ["COPY", bad("copy", "COPY advertiser_purchases TO '/tmp/x.csv'", ["n"])],
    ["ATTACH", bad("attach", "ATTACH '/tmp/x.db' AS x", ["n"])],
    ["INSTALL", bad("install", "INSTALL httpfs", ["n"])],
    ["PRAGMA", bad("pragma", "PRAGMA database_list", ["n"])],
    ["SET", bad("set", "SET threads = 1", ["n"])],
  ];
  it.each(refusedQueries)("refuses a contract whose query uses %s", async (_, query) => {
    const enclave = await fresh();
    const contract = contractFor([advertiser, publisher], [query]);
    await expect(
      enclave.acceptContract({ contract, approvals: await approvals(contract, [advertiser, publisher]) }),
    ).rejects.toEqual(code("ERR_CONTRACT_QUERY"));
    expect(enclave.health().contractDigest).toBeNull();
  });
});

describe("requests", () => {
  let enclave: Enclave;
  let contract: Contract;
  const send = (party: Party, kind: "grant" | "query", body: never) =>
    sealed(enclave, contract, party, kind, body);

  beforeAll(async () => {
    enclave = await fresh();
    contract = contractFor([advertiser, publisher]);
    const jwe = await sealed(enclave, contract, advertiser, "grant", {
      dataset: purchases.id,
      ciphertextDigest: "0".repeat(64),
    });
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_NO_CONTRACT"));
    await enclave.acceptContract({ contract, approvals: await approvals(contract, [advertiser, publisher]) });
    const early = await send(advertiser, "query", {
      queryId: "audience-overlap",
      params: {},
      resultFormat: "csv",
    } as never);
    await expect(enclave.handleRequest(early)).rejects.toEqual(code("ERR_DATASET_NOT_LOADED"));
    const ct = await encryptBytes(utf8(csv.exposures), [enclave.keys.publicKeys.ageRecipient]);
    await enclave.handleRequest(
      await send(publisher, "grant", { dataset: exposures.id, ciphertextDigest: sha256hex(ct) } as never),
    );
    await enclave.ingest(exposures.id, sha256hex(ct), pieces(ct));
  });

  async function grantAndLoad(ct: Uint8Array) {
    const digest = sha256hex(ct);
    await enclave.handleRequest(
      await send(advertiser, "grant", { dataset: purchases.id, ciphertextDigest: digest } as never),
    );
    return digest;
  }

  it("refuses a grant by a party that does not own the dataset", async () => {
    const jwe = await send(publisher, "grant", {
      dataset: purchases.id,
      ciphertextDigest: "1".repeat(64),
    } as never);
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_NOT_PERMITTED"));
    const unknown = await send(advertiser, "grant", {
      dataset: "nope",
      ciphertextDigest: "1".repeat(64),
    } as never);
    await expect(enclave.handleRequest(unknown)).rejects.toEqual(code("ERR_UNKNOWN_DATASET"));
  });

  it("refuses a replayed request", async () => {
    const jwe = await send(advertiser, "grant", {
      dataset: purchases.id,
      ciphertextDigest: "2".repeat(64),
    } as never);
    await enclave.handleRequest(jwe);
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_REPLAY"));
  });

  it("refuses requests that are not sealed signed grants or queries", async () => {
    await expect(enclave.handleRequest("not a jwe")).rejects.toEqual(code("ERR_ENVELOPE"));
    const load = await sealed(enclave, contract, advertiser, "load", {
      dataset: purchases.id,
      ciphertextDigest: "2".repeat(64),
    });
    await expect(enclave.handleRequest(load)).rejects.toEqual(code("ERR_REQUEST_KIND"));
  });

  it("refuses ingest without a grant for that digest (swap by digest)", async () => {
    const ct = await encryptBytes(utf8(csv.purchases), [enclave.keys.publicKeys.ageRecipient]);
    await grantAndLoad(ct);
    const other = await encryptBytes(utf8(csv.purchases), [enclave.keys.publicKeys.ageRecipient]);
    await expect(enclave.ingest(purchases.id, sha256hex(other), pieces(other))).rejects.toEqual(
      code("ERR_NO_GRANT"),
    );
  });

  it("refuses a stream that is not the granted ciphertext, and leaves no table", async () => {
    const ct = await encryptBytes(utf8(csv.purchases), [enclave.keys.publicKeys.ageRecipient]);
    const digest = await grantAndLoad(ct);
    // Same granted digest named, another valid file streamed: caught by hashing while decrypting.
    const swapped = await encryptBytes(utf8(csv.purchases.split("\n").slice(0, 200).join("\n")), [
      enclave.keys.publicKeys.ageRecipient,
    ]);
    await expect(enclave.ingest(purchases.id, digest, pieces(swapped))).rejects.toEqual(
      code("ERR_DIGEST_MISMATCH"),
    );
    // A tampered byte in the payload of a granted file.
    const tampered = ct.slice();
    tampered[tampered.length - 100]! ^= 1;
    const tdigest = await grantAndLoad(tampered);
    await expect(enclave.ingest(purchases.id, tdigest, pieces(tampered))).rejects.toEqual(
      code("ERR_AGE_DECRYPT"),
    );
    // A transport failure half-way.
    const failing = Readable.from(
      (async function* () {
        yield ct.subarray(0, 100_000);
        throw new Error("connection reset");
      })(),
    );
    await grantAndLoad(ct);
    await expect(enclave.ingest(purchases.id, digest, failing)).rejects.toEqual(code("ERR_INGEST_FAILED"));
    // Nothing was left behind: the right file still loads, fully.
    const loaded = await enclave.ingest(purchases.id, digest, pieces(ct));
    const rows = csv.purchases.trim().split("\n").length - 1;
    expect(
      (await verifyResponse<{ rows: number }>(loaded.response, enclave.keys.publicKeys.signingKey)).body.rows,
    ).toBe(rows);
    // And it is not loaded twice.
    await expect(grantAndLoad(ct)).rejects.toEqual(code("ERR_ALREADY_LOADED"));
  });

  it("refuses a query not in the contract, and a requester not among its runners", async () => {
    const q = await send(advertiser, "query", {
      queryId: "dump-all",
      params: {},
      resultFormat: "csv",
    } as never);
    await expect(enclave.handleRequest(q)).rejects.toEqual(code("ERR_QUERY_NOT_APPROVED"));
    const r = await send(publisher, "query", {
      queryId: "last-touch",
      params: { start: "2024-04-01", end: "2024-05-01" },
      resultFormat: "csv",
    } as never);
    await expect(enclave.handleRequest(r)).rejects.toEqual(code("ERR_NOT_PERMITTED"));
  });

  it("refuses a parameter of the wrong type", async () => {
    const q = await send(advertiser, "query", {
      queryId: "last-touch",
      params: { start: 20240401, end: "2024-05-01" },
      resultFormat: "csv",
    } as never);
    await expect(enclave.handleRequest(q)).rejects.toEqual(code("ERR_QUERY_PARAMETER"));
  });

  it("binds an SQL-crafted parameter as a value: it matches nothing", async () => {
    const q = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes' OR '1'='1" },
      resultFormat: "json",
    } as never);
    const { results } = await enclave.handleRequest(q);
    expect(JSON.parse(await openResult(advertiser, results!.advertiser!)).rows).toEqual([]);
  });

  it("refuses a query from a party that saw a head this log does not have (rollback or fork)", async () => {
    const head = enclave.health().head;
    const ahead = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes" },
      resultFormat: "json",
      ledgerHead: { seq: head.seq + 3, hash: "a".repeat(64) },
    } as never);
    await expect(enclave.handleRequest(ahead)).rejects.toEqual(code("ERR_LEDGER_ROLLBACK"));
    const forked = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes" },
      resultFormat: "json",
      ledgerHead: { seq: head.seq, hash: "b".repeat(64) },
    } as never);
    await expect(enclave.handleRequest(forked)).rejects.toEqual(code("ERR_LEDGER_ROLLBACK"));
    const current = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes" },
      resultFormat: "json",
      ledgerHead: head,
    } as never);
    await expect(enclave.handleRequest(current)).resolves.toHaveProperty("results");
  });
});

describe("k threshold, maxRuns and restarts", () => {
  const people: Dataset = {
    id: "people",
    owner: "advertiser",
    format: "csv",
    columns: [
      { name: "user_id", type: "VARCHAR" },
      { name: "grp", type: "VARCHAR" },
    ],
    identityColumn: "user_id",
    identityFormat: "sha256-hex",
  };
  const byGroup: ApprovedQuery = {
    id: "by-group",
    sql: "SELECT grp, count(DISTINCT user_id) AS n FROM people GROUP BY grp ORDER BY grp",
    parameters: [],
    runners: ["advertiser"],
    recipients: ["advertiser"],
    policy: { kind: "aggregate", minDistinctIdentities: K, allowedColumns: ["grp", "n"], maxRuns: 2 },
  };
  // K - 1 people in "a" (each twice: rows are not people), K in "b".
  const rows = ["user_id,grp"];
  for (let i = 0; i < K - 1; i++) rows.push(`${hashedEmail(i)},a`, `${hashedEmail(i)},a`);
  for (let i = 100; i < 100 + K; i++) rows.push(`${hashedEmail(i)},b`);
  const text = `${rows.join("\n")}\n`;

  async function serve(enclave: Enclave, contract: Contract) {
    await enclave.acceptContract({ contract, approvals: await approvals(contract, [advertiser, publisher]) });
    const ct = await encryptBytes(utf8(text), [enclave.keys.publicKeys.ageRecipient]);
    await enclave.handleRequest(
      await sealed(enclave, contract, advertiser, "grant", {
        dataset: "people",
        ciphertextDigest: sha256hex(ct),
      }),
    );
    await enclave.ingest("people", sha256hex(ct), pieces(ct));
  }
  const query = (enclave: Enclave, contract: Contract) =>
    sealed(enclave, contract, advertiser, "query", {
      queryId: "by-group",
      params: {},
      resultFormat: "json",
    }).then((j) => enclave.handleRequest(j));

  it("suppresses a group of k-1 people, keeps one of k, and enforces maxRuns across a restart", async () => {
    const contract = contractFor([advertiser, publisher], [byGroup], [people]);
    const first = await fresh();
    await serve(first, contract);
    const reply = await query(first, contract);
    const result = JSON.parse(await openResult(advertiser, reply.results!.advertiser!));
    expect(result.rows).toEqual([["b", String(K)]]);
    expect(result.groupsSuppressed).toBe(1);

    // The host restarts the enclave and restores the log: one run is already spent.
    const log = first.audit(1);
    const second = await fresh();
    await expect(
      second.restoreAudit({ entries: [...log.entries.slice(0, 2), log.entries[3]] }),
    ).rejects.toEqual(code("ERR_AUDIT"));
    const { head } = await second.restoreAudit({ entries: log.entries });
    expect(head.seq).toBe(log.head.seq + 1);
    await serve(second, contract);
    await expect(second.restoreAudit({ entries: log.entries })).rejects.toEqual(code("ERR_CONTRACT_STATE"));
    await query(second, contract);
    await expect(query(second, contract)).rejects.toEqual(code("ERR_MAX_RUNS"));
    const all = second.audit(1);
    const verified = await verifyAuditLog(
      all.entries,
      [first.keys.publicKeys.signingKey, second.keys.publicKeys.signingKey],
      { expectedHead: log.head },
    );
    expect(verified.entries.filter((e) => e.kind === "enclave-started")).toHaveLength(2);
    expect(verified.head).toEqual(all.head);
  });
});
