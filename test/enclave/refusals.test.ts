/**
 * Every refusal of the enclave runtime, through the Enclave class, each with the stable code a
 * requester sees. Refused operations leave no state behind (the tests then do the right thing).
 */

import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Enclave } from "../../enclave/runtime.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { signApproval } from "../../protocol/contract/sign.js";
import { type ApprovedQuery, type Contract, MIN_K } from "../../protocol/contract/types.js";
import type { GrantBody, QueryBody } from "../../protocol/jose/messages.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { exposures, hashedEmail, K, purchases, useCaseCsv } from "../sql/usecases.js";
import { testPolicy } from "./sim.js";
import {
  admit,
  approvals,
  contractFor,
  grantBody,
  makeParties,
  openResult,
  type Party,
  people,
  peopleByGroup,
  pieces,
  sealed,
  serveCsv,
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
    policy: { kind: "aggregation", minDistinctIdentities: K, allowedColumns },
  });
  const refusedQueries: [string, ApprovedQuery, RegExp][] = [
    [
      "a row-level SELECT (no aggregate)",
      bad("rows", "SELECT p.category AS c, p.purchase_ts AS t FROM advertiser_purchases p", ["c", "t"]),
      /an output must be a GROUP BY expression or built from allowed aggregates/,
    ],
    [
      "ORDER BY (the enclave orders released rows itself)",
      bad(
        "ordered",
        "SELECT p.category AS c, count(*) AS n FROM advertiser_purchases p GROUP BY p.category ORDER BY p.category",
        ["c", "n"],
      ),
      /ORDER BY is not allowed/,
    ],
    [
      "LIMIT",
      bad(
        "limited",
        "SELECT p.category AS c, count(*) AS n FROM advertiser_purchases p GROUP BY p.category LIMIT 1",
        ["c", "n"],
      ),
      /LIMIT and OFFSET are not allowed/,
    ],
    [
      "an unqualified column",
      bad("bare", "SELECT category AS c, count(*) AS n FROM advertiser_purchases p GROUP BY category", [
        "c",
        "n",
      ]),
      /must be written as alias\.column/,
    ],
    [
      "an output without an alias",
      bad("unnamed", "SELECT p.category, count(*) AS n FROM advertiser_purchases p GROUP BY p.category", [
        "category",
        "n",
      ]),
      /every output needs an alias/,
    ],
    [
      "a measure as a group key",
      bad("by-amount", "SELECT p.amount AS a, count(*) AS n FROM advertiser_purchases p GROUP BY p.amount", [
        "a",
        "n",
      ]),
      /measure p\.amount may appear only inside an allowed aggregate/,
    ],
    [
      "an aggregate the measure's owner did not allow",
      bad("max-amount", "SELECT max(p.amount) AS m FROM advertiser_purchases p", ["m"]),
      /max of p\.amount is not allowed/,
    ],
    [
      "a join on a dimension instead of the identity",
      bad(
        "join-dim",
        "SELECT count(*) AS n FROM advertiser_purchases p JOIN publisher_exposures e ON e.segment = p.category",
        ["n"],
      ),
      /needs an equality of identity or join columns/,
    ],
    [
      "a subquery (outside the aggregation grammar)",
      bad(
        "sub",
        "SELECT count(*) AS n FROM advertiser_purchases p WHERE p.category IN (SELECT e.segment FROM publisher_exposures e)",
        ["n"],
      ),
      /subqueries are not allowed under the aggregation rule/,
    ],
    [
      "raw identity under aggregation",
      bad("max-id", "SELECT max(p.user_id) AS m FROM advertiser_purchases p", ["m"]),
      /identity column p\.user_id may only be counted/,
    ],
    [
      "identity as a group key",
      bad("by-id", "SELECT p.user_id AS u, count(*) AS n FROM advertiser_purchases p GROUP BY p.user_id", [
        "u",
        "n",
      ]),
      /identity column p\.user_id may appear only in join equalities/,
    ],
    [
      "read_csv",
      bad("read", "SELECT count(*) AS n FROM read_csv('/etc/passwd')", ["n"]),
      /FROM may only join dataset tables/,
    ],
    ["COPY", bad("copy", "COPY advertiser_purchases TO '/tmp/x.csv'", ["n"]), /not a single SELECT/],
    ["ATTACH", bad("attach", "ATTACH '/tmp/x.db' AS x", ["n"]), /not a single SELECT/],
    ["INSTALL", bad("install", "INSTALL httpfs", ["n"]), /not a single SELECT/],
    ["PRAGMA", bad("pragma", "PRAGMA database_list", ["n"]), /not a single SELECT/],
    ["SET", bad("set", "SET threads = 1", ["n"]), /not a single SELECT/],
  ];
  it.each(refusedQueries)("refuses a contract whose query has %s", async (_, query, reason) => {
    const enclave = await fresh();
    const contract = contractFor([advertiser, publisher], [query]);
    await expect(admit(enclave, contract, [advertiser, publisher])).rejects.toEqual(
      expect.objectContaining({
        code: "ERR_CONTRACT_QUERY",
        queryId: query.id,
        reason: expect.stringMatching(reason),
      }),
    );
    expect(enclave.health().contractDigest).toBeNull();
  });

  it("refuses a custom query whose top level is not covered by its DP policy", async () => {
    const enclave = await fresh();
    const query: ApprovedQuery = {
      id: "custom-rows",
      sql: "SELECT p.category AS category, p.amount AS amount FROM advertiser_purchases p",
      parameters: [],
      runners: ["advertiser"],
      recipients: ["advertiser"],
      policy: {
        kind: "custom",
        minDistinctIdentities: K,
        allowedColumns: ["category", "amount"],
        dp: {
          epsilon: 1,
          budget: 2,
          groups: "single",
          maxRowsPerIdentity: 1,
          clamp: { lower: 0, upper: 100 },
          columns: [{ name: "amount", kind: "sum" }],
        },
      },
    };
    const contract = contractFor([advertiser, publisher], [query]);
    await expect(admit(enclave, contract, [advertiser, publisher])).rejects.toEqual(
      expect.objectContaining({
        code: "ERR_CONTRACT_QUERY",
        reason: expect.stringMatching(/every output column must be a dp column or a GROUP BY expression/),
      }),
    );
    expect(enclave.health().contractDigest).toBeNull();
  });

  it("refuses a contract under k = MIN_K or a dataset without column roles, before any SQL check", async () => {
    const enclave = await fresh();
    const ok = contractFor([advertiser, publisher]);
    const lowK = structuredClone(ok);
    lowK.queries[0]!.policy.minDistinctIdentities = MIN_K - 1;
    const noRoles = structuredClone(ok) as unknown as { datasets: Record<string, unknown>[] };
    delete noRoles.datasets[0]!.analysis;
    for (const contract of [lowK, noRoles as unknown as Contract]) {
      await expect(admit(enclave, contract, [advertiser, publisher])).rejects.toEqual(code("ERR_CONTRACT"));
    }
    expect(enclave.health().contractDigest).toBeNull();
  });
});

describe("requests", () => {
  let enclave: Enclave;
  let contract: Contract;
  const send = (party: Party, kind: "grant" | "query", body: GrantBody | QueryBody) =>
    sealed(enclave, contract, party, kind, body as never);
  /** `party`'s sealed grant of the blob `digest` to `dataset`. */
  const grant = async (party: Party, dataset: string, digest: string) =>
    send(party, "grant", await grantBody(contract, party, { dataset, ciphertextDigest: digest }));

  beforeAll(async () => {
    enclave = await fresh();
    contract = contractFor([advertiser, publisher]);
    const jwe = await grant(advertiser, purchases.id, "0".repeat(64));
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_NO_CONTRACT"));
    await admit(enclave, contract, [advertiser, publisher]);
    const early = await send(advertiser, "query", {
      queryId: "audience-overlap",
      params: {},
      resultFormat: "csv",
    } as never);
    await expect(enclave.handleRequest(early)).rejects.toEqual(code("ERR_DATASET_NOT_LOADED"));
    await serveCsv(enclave, contract, publisher, exposures.id, csv.exposures, { toEnclave: true });
  });

  async function grantAndLoad(ct: Uint8Array) {
    const digest = sha256hex(ct);
    await enclave.handleRequest(await grant(advertiser, purchases.id, digest));
    return digest;
  }

  it("refuses a grant by a party that does not own the dataset", async () => {
    const jwe = await grant(publisher, purchases.id, "1".repeat(64));
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_NOT_PERMITTED"));
    const unknown = await grant(advertiser, "nope", "1".repeat(64));
    await expect(enclave.handleRequest(unknown)).rejects.toEqual(code("ERR_UNKNOWN_DATASET"));
  });

  it("refuses a replayed request", async () => {
    const jwe = await grant(advertiser, purchases.id, "2".repeat(64));
    await enclave.handleRequest(jwe);
    await expect(enclave.handleRequest(jwe)).rejects.toEqual(code("ERR_REPLAY"));
  });

  it("refuses requests that are not sealed signed grants or queries", async () => {
    await expect(enclave.handleRequest("not a jwe")).rejects.toEqual(code("ERR_ENVELOPE"));
    // A kind the protocol no longer has ("load"), signed by a party: its typ is refused.
    const load = await sealed(
      enclave,
      contract,
      advertiser,
      "load" as never,
      {
        dataset: purchases.id,
        ciphertextDigest: "2".repeat(64),
      } as never,
    );
    await expect(enclave.handleRequest(load)).rejects.toEqual(code("ERR_REQUEST_SIGNATURE"));
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
    // A grant permits one load: the failed one used it up, so the same stream again needs a new grant.
    await expect(enclave.ingest(purchases.id, digest, pieces(ct))).rejects.toEqual(code("ERR_NO_GRANT"));
    await grantAndLoad(ct);
    // Nothing was left behind: the right file still loads, fully.
    const loaded = await enclave.ingest(purchases.id, digest, pieces(ct));
    const rows = csv.purchases.trim().split("\n").length - 1;
    expect(
      (await verifyResponse<{ rows: number }>(loaded.response, enclave.keys.publicKeys.signingKey)).body.rows,
    ).toBe(rows);
    // And it is not loaded twice: the same grant again is answered with the first load's answer.
    await grantAndLoad(ct);
    const again = await enclave.ingest(purchases.id, digest, pieces(ct));
    const first = await verifyResponse<{ rows: number; version: number }>(
      loaded.response,
      enclave.keys.publicKeys.signingKey,
    );
    const second = await verifyResponse<{ rows: number; version: number }>(
      again.response,
      enclave.keys.publicKeys.signingKey,
    );
    expect(second.body).toMatchObject({ rows: first.body.rows, version: 1 });
    expect(again.quality).toBe(loaded.quality);
    // Another file needs the version it builds on named.
    const other = await encryptBytes(utf8(csv.purchases), [enclave.keys.publicKeys.ageRecipient]);
    await expect(grantAndLoad(other)).rejects.toEqual(code("ERR_DATASET_VERSION"));
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
      auditHead: { seq: head.seq + 3, hash: "a".repeat(64) },
    } as never);
    await expect(enclave.handleRequest(ahead)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    const forked = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes" },
      resultFormat: "json",
      auditHead: { seq: head.seq, hash: "b".repeat(64) },
    } as never);
    await expect(enclave.handleRequest(forked)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    const current = await send(advertiser, "query", {
      queryId: "audience-insight",
      params: { category: "shoes" },
      resultFormat: "json",
      auditHead: head,
    } as never);
    await expect(enclave.handleRequest(current)).resolves.toHaveProperty("results");
  });
});

describe("k threshold, maxRuns and restarts", () => {
  const byGroup = peopleByGroup("by-group", { maxRuns: 2 });
  // K - 1 people in "a" (each twice: rows are not people), K in "b".
  const rows = ["user_id,grp"];
  for (let i = 0; i < K - 1; i++) rows.push(`${hashedEmail(i)},a`, `${hashedEmail(i)},a`);
  for (let i = 100; i < 100 + K; i++) rows.push(`${hashedEmail(i)},b`);
  const text = `${rows.join("\n")}\n`;

  async function serve(enclave: Enclave, contract: Contract) {
    await admit(enclave, contract, [advertiser, publisher]);
    await serveCsv(enclave, contract, advertiser, people.id, text, { toEnclave: true });
  }
  const query = (enclave: Enclave, contract: Contract, auditHead?: AuditHead) =>
    sealed(enclave, contract, advertiser, "query", {
      queryId: "by-group",
      params: {},
      resultFormat: "json",
      ...(auditHead ? { auditHead } : {}),
    }).then((j) => enclave.handleRequest(j));

  it("suppresses a group of k-1 people, keeps one of k, and enforces maxRuns and the guard across a restart", async () => {
    const contract = contractFor([advertiser, publisher], [byGroup], [people]);
    const first = await fresh();
    await serve(first, contract);
    const reply = await query(first, contract);
    const result = JSON.parse(await openResult(advertiser, reply.results!.advertiser!));
    // Group "a" (k-1 people) is neither released nor counted.
    expect(result).toEqual({ columns: expect.any(Array), rows: [["b", String(K)]] });

    // The host restarts the enclave and restores the log: one run is already spent.
    const log = first.audit(1);
    const second = await fresh();
    await expect(
      second.restoreAudit({ entries: [...log.entries.slice(0, 2), log.entries[3]] }),
    ).rejects.toEqual(expect.objectContaining({ code: "ERR_AUDIT_RESTORE", seq: 3 }));
    const { head } = await second.restoreAudit({ entries: log.entries });
    expect(head.seq).toBe(log.head.seq + 1);
    await serve(second, contract);
    await expect(second.restoreAudit({ entries: log.entries })).rejects.toEqual(code("ERR_CONTRACT_STATE"));
    // The restarted enclave does not know whom the first run released: the differencing guard
    // releases nothing more of that query rather than forget it.
    // The requester shows the head it saw before the restart (maxRuns counts from the restored log).
    const again = await query(second, contract, log.head);
    expect(JSON.parse(await openResult(advertiser, again.results!.advertiser!)).rows).toEqual([]);
    await expect(query(second, contract)).rejects.toEqual(code("ERR_MAX_RUNS"));
    const all = second.audit(1);
    const verified = await verifyAuditLog(all.entries, await testPolicy(), { heads: [log.head] });
    expect(verified.entries.filter((e) => e.kind === "enclave-started")).toHaveLength(2);
    expect(verified.head).toEqual(all.head);
  });
});
