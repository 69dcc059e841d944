/**
 * The enclave API over HTTP on loopback (docs/PROTOCOL.md §7): routes, JSON shapes, error
 * bodies and statuses, streamed ingest, and interop with the stock `age` CLI both ways.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Enclave } from "../../enclave/runtime.js";
import { listen } from "../../enclave/server.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { contractDigest } from "../../protocol/contract/digest.js";
import type { ApprovedQuery, Contract } from "../../protocol/contract/types.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { cliDecrypt, cliEncrypt } from "../age/age-cli.js";
import { exposures, K, purchases, useCaseCsv, useCaseQueries } from "../sql/usecases.js";
import { skipWithout } from "../tools.js";
import { testPolicy } from "./sim.js";
import * as truth from "./truth.js";
import {
  approvals,
  contractFor,
  encryptToSelf,
  grantBody,
  makeParties,
  openReceipt,
  type Party,
  sealed,
  sha256hex,
  startEnclave,
  utf8,
} from "./world.js";

/**
 * As written, fails inside the engine on the data, with a message that quotes a category value
 * ("extract specifier "shoes" not recognized"): date_trunc reads its part from a dimension column.
 * The enclave runs dimensions under TRY, so the value is NULL for its row instead.
 */
const dataFail: ApprovedQuery = {
  id: "data-fail",
  sql: "SELECT date_trunc(p.category, p.purchase_ts) AS t, count(*) AS n FROM advertiser_purchases p GROUP BY date_trunc(p.category, p.purchase_ts)",
  parameters: [],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: { kind: "aggregation", minDistinctIdentities: K, allowedColumns: ["t", "n"] },
};

const csv = useCaseCsv();
let enclave: Enclave;
let base: string;
let close: () => Promise<void>;
let advertiser: Party;
let publisher: Party;
let contract: Contract;

beforeAll(async () => {
  ({ advertiser, publisher } = await makeParties());
  contract = contractFor([advertiser, publisher], [...useCaseQueries, dataFail]);
  enclave = await startEnclave();
  const served = await listen(enclave, { host: "127.0.0.1", port: 0 });
  base = `http://${served.address}`;
  close = served.close;
});
afterAll(async () => {
  await close();
  enclave.close();
});

async function call(method: string, path: string, body?: unknown, raw?: Uint8Array) {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(raw
      ? { body: raw as BufferSource, headers: { "content-type": "application/octet-stream" } }
      : body !== undefined
        ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
        : {}),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: responses are read loosely; shapes are asserted
  return { status: res.status, text, json: JSON.parse(text) as Record<string, any> };
}

const failure = (status: number, code: string) => ({
  status,
  json: { error: { code, message: expect.any(String) } },
});

describe("enclave HTTP API", () => {
  it("serves health, evidence and 404s before a contract", async () => {
    expect((await call("GET", "/v1/health")).json).toEqual({
      ok: true,
      platform: "sev-snp",
      simulated: true,
      contractDigest: null,
      head: enclave.health().head,
    });
    const ev = await call("GET", `/v1/evidence?nonce=${"01".repeat(16)}`);
    expect(ev.json).toMatchObject({
      platform: "sev-snp",
      keys: enclave.keys.publicKeys,
      contractDigest: null,
    });
    expect(await call("GET", "/v1/evidence?nonce=zz")).toMatchObject(failure(400, "ERR_USAGE"));
    expect(await call("GET", "/v1/contract")).toMatchObject(failure(404, "ERR_NO_CONTRACT"));
    expect(await call("GET", "/v1/nothing")).toMatchObject(failure(404, "ERR_NOT_FOUND"));
    expect(await call("DELETE", "/v1/health")).toMatchObject(failure(404, "ERR_NOT_FOUND"));
  });

  it("refuses bad bodies with 400, 403 and 413", async () => {
    const res = await fetch(`${base}/v1/contract`, { method: "POST", body: "{not json" });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("ERR_USAGE");
    expect(await call("POST", "/v1/contract", { contract, approvals: [] })).toMatchObject(
      failure(403, "ERR_CONTRACT_SIGNATURE"),
    );
    const big = { contract, approvals: ["x".repeat(2 * 1024 * 1024)] };
    expect(await call("POST", "/v1/contract", big)).toMatchObject(failure(413, "ERR_TOO_LARGE"));
  });

  it("accepts the contract and returns a signed {digest, head}", async () => {
    const r = await call("POST", "/v1/contract", {
      contract,
      approvals: await approvals(contract, [advertiser, publisher]),
    });
    expect(r.status).toBe(200);
    const digest = (await contractDigest(contract)).hex;
    const { body } = await verifyResponse(r.json.response, enclave.keys.publicKeys.signingKey);
    expect(body).toEqual({ digest, head: (await call("GET", "/v1/health")).json.head });
    expect((await call("GET", "/v1/contract")).json).toMatchObject({ digest, contract });
    expect(await call("POST", "/v1/contract", { contract, approvals: [] })).toMatchObject(
      failure(409, "ERR_CONTRACT_STATE"),
    );
  });

  async function grant(party: Party, dataset: string, ct: Uint8Array, fileKey?: string) {
    const digest = sha256hex(ct);
    const jwe = await sealed(
      enclave,
      contract,
      party,
      "grant",
      await grantBody(contract, party, {
        dataset,
        ciphertextDigest: digest,
        ...(fileKey ? { fileKey } : {}),
      }),
    );
    const r = await call("POST", "/v1/requests", { jwe });
    expect(r.status).toBe(200);
    return digest;
  }

  it("ingests a CSV encrypted by the stock age CLI to the enclave's recipient", async (ctx) => {
    skipWithout(ctx, "age");
    const ct = cliEncrypt(utf8(csv.purchases), [enclave.keys.publicKeys.ageRecipient]);
    const digest = await grant(advertiser, purchases.id, ct);
    // A digest other than the granted one is refused before any byte is decrypted.
    expect(
      await call("POST", `/v1/datasets/${purchases.id}/ingest?digest=${"0".repeat(64)}`, undefined, ct),
    ).toMatchObject(failure(403, "ERR_NO_GRANT"));
    const r = await call("POST", `/v1/datasets/${purchases.id}/ingest?digest=${digest}`, undefined, ct);
    expect(r.status).toBe(200);
    const { body } = await verifyResponse<{ rows: number }>(
      r.json.response,
      enclave.keys.publicKeys.signingKey,
    );
    expect(body.rows).toBe(csv.purchases.trim().split("\n").length - 1);
    const quality = JSON.parse(
      new TextDecoder().decode(cliDecrypt(Buffer.from(r.json.quality, "base64"), [advertiser.identity])),
    );
    expect(quality.rowsRejected).toBe(0);
  });

  it("refuses a tampered upload with 403 and keeps nothing", async () => {
    const { ciphertext, fileKey } = await encryptToSelf(publisher, utf8(csv.exposures));
    const tampered = ciphertext.slice();
    tampered[tampered.length - 1]! ^= 0x80;
    const bad = await grant(publisher, exposures.id, tampered, fileKey);
    expect(
      await call("POST", `/v1/datasets/${exposures.id}/ingest?digest=${bad}`, undefined, tampered),
    ).toMatchObject(failure(403, "ERR_AGE_DECRYPT"));
    const good = await grant(publisher, exposures.id, ciphertext, fileKey);
    expect(
      (await call("POST", `/v1/datasets/${exposures.id}/ingest?digest=${good}`, undefined, ciphertext))
        .status,
    ).toBe(200);
  });

  it("runs a query; each recipient decrypts its result with the stock age CLI", async (ctx) => {
    skipWithout(ctx, "age");
    const jwe = await sealed(enclave, contract, publisher, "query", {
      queryId: "audience-overlap",
      params: {},
      resultFormat: "csv",
    });
    const r = await call("POST", "/v1/requests", { jwe });
    expect(r.status).toBe(200);
    // The guard's history of this run, sealed for a later instance, travels beside the results.
    expect(Object.keys(r.json).sort()).toEqual(["response", "results", "sealedHistory"]);
    const { body } = await verifyResponse<Record<string, unknown>>(
      r.json.response,
      enclave.keys.publicKeys.signingKey,
    );
    const expected = truth.audienceOverlap(truth.parse(csv));
    const text = `segment,publisher_users,overlap_users\n${expected.rows.map((row) => row.join(",")).join("\n")}\n`;
    for (const p of [advertiser, publisher]) {
      const plain = new TextDecoder().decode(
        cliDecrypt(Buffer.from(r.json.results[p.id], "base64"), [p.identity]),
      );
      expect(plain).toBe(text);
    }
    expect(body).toMatchObject({
      queryId: "audience-overlap",
      requester: "publisher",
      format: "csv",
      resultDigests: {
        advertiser: sha256hex(Buffer.from(r.json.results.advertiser, "base64")),
        publisher: sha256hex(Buffer.from(r.json.results.publisher, "base64")),
      },
    });
    // Receipts are age files too: the stock CLI opens them (padded JSON).
    const receipt = JSON.parse(
      new TextDecoder().decode(
        cliDecrypt(Buffer.from((body.receipts as Record<string, string>).advertiser!, "base64"), [
          advertiser.identity,
        ]),
      ),
    );
    expect(receipt).toMatchObject({
      query: "audience-overlap",
      party: "advertiser",
      rows: expected.rows.length,
    });
    // Replaying the same envelope: 409.
    expect(await call("POST", "/v1/requests", { jwe })).toMatchObject(failure(409, "ERR_REPLAY"));
  });

  it("answers a query that would fail on the data with the failing value as NULL; the value appears nowhere", async (ctx) => {
    skipWithout(ctx, "age");
    // Success or failure must not tell anything about the data: the engine's message (which
    // quotes a value) never arises, and the answer is one NULL group of everyone, not an error.
    // The second run (the same people) is then held back by the differencing guard.
    for (const resultFormat of ["csv", "json"] as const) {
      const first = resultFormat === "csv";
      const jwe = await sealed(enclave, contract, advertiser, "query", {
        queryId: "data-fail",
        params: {},
        resultFormat,
      });
      const r = await call("POST", "/v1/requests", { jwe });
      expect(r.status).toBe(200);
      expect(r.text).not.toMatch(/shoes|apparel|specifier/i);
      const { body } = await verifyResponse<Record<string, unknown>>(
        r.json.response,
        enclave.keys.publicKeys.signingKey,
      );
      expect(body).toMatchObject({ queryId: "data-fail", format: resultFormat });
      expect(body).not.toHaveProperty("rows");
      expect(body).not.toHaveProperty("groupsSuppressed");
      expect(
        await openReceipt(advertiser, (body.receipts as Record<string, string>).advertiser!),
      ).toMatchObject({ rows: first ? 1 : 0 });
      const plain = new TextDecoder().decode(
        cliDecrypt(Buffer.from(r.json.results.advertiser, "base64"), [advertiser.identity]),
      );
      expect(plain).not.toMatch(/shoes|apparel|specifier/i);
      if (first) expect(plain).toMatch(/^t,n\n,\d+\n$/);
      else expect(JSON.parse(plain)).toEqual({ columns: expect.any(Array), rows: [] });
    }
  });

  it("serves the audit log from a seq; it verifies with the enclave's key", async () => {
    const all = await call("GET", "/v1/audit");
    await verifyAuditLog(all.json.entries, await testPolicy(), { heads: [all.json.head] });
    expect((await call("GET", "/v1/audit?from=3")).json.entries).toEqual(all.json.entries.slice(2));
    expect(await call("GET", "/v1/audit?from=0")).toMatchObject(failure(400, "ERR_USAGE"));
    expect(await call("POST", "/v1/audit/restore", { entries: [] })).toMatchObject(
      failure(409, "ERR_CONTRACT_STATE"),
    );
  });
});

describe("unix socket", () => {
  it("serves on a socket path, owner-only", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-sock-"));
    const e = await startEnclave();
    const path = join(dir, "enclave.sock");
    const served = await listen(e, { path });
    try {
      const text = await new Promise<string>((resolve, reject) => {
        request({ socketPath: path, path: "/v1/health" }, (res) => {
          let s = "";
          res.on("data", (d) => (s += d));
          res.on("end", () => resolve(s));
        })
          .on("error", reject)
          .end();
      });
      expect(JSON.parse(text)).toMatchObject({ ok: true, contractDigest: null });
    } finally {
      await served.close();
      e.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
