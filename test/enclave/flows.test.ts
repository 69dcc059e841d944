/**
 * The whole flow through the Enclave class: both parties approve the use-case contract, grant
 * and upload (one file encrypted to the enclave, one to the owner's own recipient with its file
 * key in the grant), run the four queries, and decrypt results equal to aggregates computed
 * directly on the plaintext (the DP one within its noise bound). The exported audit log verifies with the enclave's key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindingData } from "../../attestation/binding.js";
import { fromBase64, fromHex } from "../../attestation/bytes.js";
import { parseReport } from "../../attestation/snp/report.js";
import type { Enclave } from "../../enclave/runtime.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditEntry } from "../../protocol/audit/entry.js";
import { paramsDigest, runEntryBinds } from "../../protocol/audit/query-run.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { Contract } from "../../protocol/contract/types.js";
import type { QueryBody, QueryResponseBody } from "../../protocol/jose/messages.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { exposures, lastTouch, purchases, useCaseCsv } from "../sql/usecases.js";
import { testPolicy } from "./sim.js";
import * as truth from "./truth.js";
import {
  admit,
  contractFor,
  makeParties,
  openReceipt,
  openResult,
  type Party,
  RESPONSE_BODY_KEYS,
  sealed,
  serveCsv,
  sha256hex,
  startEnclave,
  utf8,
} from "./world.js";

const csv = useCaseCsv();
const plain = truth.parse(csv);
let enclave: Enclave;
let contract: Contract;
let advertiser: Party;
let publisher: Party;

beforeAll(async () => {
  ({ advertiser, publisher } = await makeParties());
  contract = contractFor([advertiser, publisher]);
  enclave = await startEnclave();
});
afterAll(() => enclave.close());

/** The closed-loop run's signed answer and results, kept for the audit checks. */
let closedLoopRun: (QueryResponseBody & { results: Record<string, string> }) | undefined;

async function body<B>(jws: string, nonce?: string): Promise<B> {
  return (await verifyResponse<B>(jws, enclave.keys.publicKeys.signingKey, nonce ? { inReplyTo: nonce } : {}))
    .body;
}

describe("enclave flow (class API)", () => {
  it("binds keys and nonce in its evidence before a contract, and serves no contract", async () => {
    const nonce = "ab".repeat(32);
    const bundle = await enclave.evidence(nonce);
    expect(bundle.contractDigest).toBeNull();
    expect(bundle.keys).toEqual(enclave.keys.publicKeys);
    const expected = await bindingData({ keys: bundle.keys, contractDigest: null, nonce: fromHex(nonce) });
    expect(parseReport(fromBase64(bundle.evidence)).reportData).toEqual(expected);
    expect(() => enclave.getContract()).toThrow(expect.objectContaining({ code: "ERR_NO_CONTRACT" }));
    expect(enclave.health()).toMatchObject({ ok: true, contractDigest: null, head: { seq: 1 } });
  });

  it("accepts the contract both parties approved and binds it", async () => {
    const { response } = await admit(enclave, contract, [advertiser, publisher]);
    const digest = (await contractDigest(contract)).hex;
    expect(await body(response)).toEqual({ digest, head: enclave.health().head });
    expect(enclave.getContract().digest).toBe(digest);
    expect((await enclave.evidence("cd".repeat(16))).contractDigest).toBe(digest);
  });

  it("loads a file encrypted to the enclave (advertiser)", async () => {
    const { digest, granted, loaded } = await serveCsv(
      enclave,
      contract,
      advertiser,
      purchases.id,
      csv.purchases,
      {
        toEnclave: true,
        pieceSize: 7777,
      },
    );
    expect(await body(granted.response)).toMatchObject({ dataset: purchases.id, ciphertextDigest: digest });
    const rows = csv.purchases.trim().split("\n").length - 1;
    expect(await body(loaded.response)).toMatchObject({
      dataset: purchases.id,
      ciphertextDigest: digest,
      rows,
    });
    const report = JSON.parse(await openResult(advertiser, loaded.quality));
    expect(report).toMatchObject({ dataset: purchases.id, rowsAccepted: rows, rowsRejected: 0 });
    // The quality report is the owner's alone.
    await expect(decryptBytes(fromBase64(loaded.quality), publisher.identity)).rejects.toMatchObject({
      code: "ERR_AGE_NO_IDENTITY",
    });
  });

  it("loads a file encrypted to the owner's own recipient, with the file key in the grant (publisher)", async () => {
    const { loaded } = await serveCsv(enclave, contract, publisher, exposures.id, csv.exposures);
    expect((await body<{ rows: number }>(loaded.response)).rows).toBe(plain.e.length);
  });

  async function run(party: Party, q: QueryBody) {
    const jwe = await sealed(enclave, contract, party, "query", q);
    const reply = await enclave.handleRequest(jwe);
    return reply;
  }

  async function expectRows(party: Party, q: QueryBody, expected: truth.Expected, recipients: Party[]) {
    const reply = await run(party, q);
    const b = await body<QueryResponseBody>(reply.response);
    expect(Object.keys(b).sort()).toEqual(RESPONSE_BODY_KEYS);
    expect(b).toMatchObject({ queryId: q.queryId, requester: party.id, format: "json", epsilon: 0 });
    expect(Object.keys(reply.results!).sort()).toEqual(recipients.map((r) => r.id).sort());
    expect(Object.keys(b.resultDigests).sort()).toEqual(recipients.map((r) => r.id).sort());
    const parties = new Set([...recipients.map((r) => r.id), party.id]);
    expect(Object.keys(b.receipts).sort()).toEqual([...parties].sort());
    let key: string | undefined;
    for (const r of recipients) {
      // The digest is over the ciphertext the recipient receives, checked before decrypting.
      expect(b.resultDigests[r.id]).toBe(sha256hex(fromBase64(reply.results![r.id]!)));
      const receipt = await openReceipt(r, b.receipts[r.id]!);
      expect(receipt).toEqual({
        version: 1,
        query: q.queryId,
        requester: party.id,
        party: r.id,
        format: "json",
        paramsKey: expect.stringMatching(/^[0-9a-f]{64}$/),
        // The released row count only: the groups held back are counted nowhere.
        rows: expected.rows.length,
      });
      key ??= receipt.paramsKey;
      expect(receipt.paramsKey).toBe(key);
      expect(await paramsDigest(receipt.paramsKey, q.params)).toBe(b.paramsDigest);
      const text = await openResult(r, reply.results![r.id]!);
      const result = JSON.parse(text) as { rows: (string | number)[][] };
      expect(Object.keys(result)).toEqual(["columns", "rows"]);
      expect(result.rows.length).toBe(expected.rows.length);
      for (const [i, row] of result.rows.entries()) {
        for (const [j, cell] of row.entries()) {
          const want = expected.rows[i]![j]!;
          if (typeof want === "number") expect(cell as number).toBeCloseTo(want, 2);
          else expect(cell).toBe(want);
        }
      }
    }
    return reply;
  }

  it("closed-loop, for both recipients", async () => {
    const e = truth.closedLoop(plain, "spring24");
    expect(e.rows.length).toBe(2);
    const reply = await expectRows(
      publisher,
      { queryId: "closed-loop", params: { campaign: "spring24" }, resultFormat: "json" },
      e,
      [advertiser, publisher],
    );
    closedLoopRun = { ...(await body<QueryResponseBody>(reply.response)), results: reply.results! };
  });

  it("audience overlap", async () => {
    await expectRows(
      advertiser,
      { queryId: "audience-overlap", params: {}, resultFormat: "json" },
      truth.audienceOverlap(plain),
      [advertiser, publisher],
    );
  });

  it("last-touch attribution (custom rule, DP), to the advertiser only, noised near the exact answer", async () => {
    const e = truth.lastTouch(plain, "2024-04-01", "2024-05-01");
    expect(e.rows.map((r) => r[0])).toEqual(["ctv", "display", "social"]);
    const reply = await run(advertiser, {
      queryId: "last-touch",
      params: { start: "2024-04-01", end: "2024-05-01" },
      resultFormat: "json",
    });
    const b = await body<QueryResponseBody>(reply.response);
    // Public groups: one row per declared channel, nothing suppressed, epsilon charged.
    expect(b).toMatchObject({
      queryId: "last-touch",
      requester: "advertiser",
      format: "json",
      epsilon: lastTouch.policy.dp!.epsilon,
    });
    const receipt = await openReceipt(advertiser, b.receipts.advertiser!);
    expect(receipt).toMatchObject({ rows: 3 });
    expect(receipt).not.toHaveProperty("groupsSuppressed");
    expect(Object.keys(reply.results!)).toEqual(["advertiser"]);
    expect(b.resultDigests).toEqual({ advertiser: sha256hex(fromBase64(reply.results!.advertiser!)) });
    const text = await openResult(advertiser, reply.results!.advertiser!);
    const result = JSON.parse(text) as { columns: { name: string }[]; rows: (string | number)[][] };
    const names = result.columns.map((c) => c.name);
    expect(names).toEqual(["channel", "conversions", "revenue"]);
    truth.expectNoisy(lastTouch, names, result.rows, e);
    await expect(
      decryptBytes(fromBase64(reply.results!.advertiser!), publisher.identity),
    ).rejects.toMatchObject({ code: "ERR_AGE_NO_IDENTITY" });
  });

  it("audience insight suppresses the rare band", async () => {
    const e = truth.audienceInsight(plain, "shoes");
    expect(e.suppressed).toBe(1);
    await expectRows(
      advertiser,
      { queryId: "audience-insight", params: { category: "shoes" }, resultFormat: "json" },
      e,
      [advertiser],
    );
  });

  it("serialises CSV results too (plain CSV for age -d), digest over the ciphertext", async () => {
    // Another category: the same rows again would be held back by the differencing guard.
    const reply = await run(advertiser, {
      queryId: "audience-insight",
      params: { category: "apparel" },
      resultFormat: "csv",
    });
    const text = await openResult(advertiser, reply.results!.advertiser!);
    const e = truth.audienceInsight(plain, "apparel");
    expect(e.rows.length).toBeGreaterThan(0);
    expect(text).toBe(`age_band,overlap_users\n${e.rows.map((r) => r.join(",")).join("\n")}\n`);
    const b = await body<QueryResponseBody>(reply.response);
    expect(b.resultDigests.advertiser).toBe(sha256hex(fromBase64(reply.results!.advertiser!)));
    // The counts are in the receipt, not in the CSV.
    expect(await openReceipt(advertiser, b.receipts.advertiser!)).toMatchObject({
      format: "csv",
      rows: e.rows.length,
    });
  });

  it("keeps an audit log that verifies with its signing key and records every event", async () => {
    const { entries, head } = enclave.audit(1);
    const log = await verifyAuditLog(entries, await testPolicy(), { heads: [head] });
    expect(log.entries.map((e) => e.kind)).toEqual([
      "enclave-started",
      "contract-accepted",
      "grant",
      "dataset-loaded",
      "grant",
      "dataset-loaded",
      "query-run",
      "query-run",
      "query-run",
      "query-run",
      "query-run",
    ]);
    const run = log.entries[6] as AuditEntry<"query-run">;
    // A guarded query that released rows carries the digest of its sealed guard history.
    expect(Object.keys(run.data).sort()).toEqual([
      "epsilon",
      "guard",
      "paramsDigest",
      "query",
      "requester",
      "resultDigests",
      "versions",
    ]);
    expect(run.data).toMatchObject({ query: "closed-loop", requester: "publisher", epsilon: 0 });
    expect(Object.keys(run.data.resultDigests).sort()).toEqual(["advertiser", "publisher"]);
    expect(log.entries[8]!.data).toMatchObject({
      query: "last-touch",
      requester: "advertiser",
      epsilon: lastTouch.policy.dp!.epsilon,
    });
    // Keyed: the plain digest of the parameters (which anyone can compute) is not it.
    expect(run.data.paramsDigest).not.toBe(sha256hex(utf8('{"campaign":"spring24"}')));
    expect(run.data.paramsDigest).toBe(closedLoopRun!.paramsDigest);
    // Every recipient binds the entry to what it holds: its ciphertext and, told the parameters, them.
    for (const p of [advertiser, publisher]) {
      const receipt = await openReceipt(p, closedLoopRun!.receipts[p.id]!);
      expect(
        await runEntryBinds(run, {
          party: p.id,
          ciphertext: fromBase64(closedLoopRun!.results[p.id]!),
          params: { campaign: "spring24" },
          paramsKey: receipt.paramsKey,
        }),
      ).toBe(true);
      expect(
        await runEntryBinds(run, {
          party: p.id,
          params: { campaign: "summer24" },
          paramsKey: receipt.paramsKey,
        }),
      ).toBe(false);
    }
    expect(enclave.audit(10).entries).toEqual(entries.slice(9));
  });
});
