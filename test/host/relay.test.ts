import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeEnclave, fakeJwe, fakeJws } from "./fake-enclave.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

let fake: FakeEnclave;
let host: TestHost;

beforeEach(async () => {
  fake = await FakeEnclave.start();
  host = await startHost({ host: "127.0.0.1", port: fake.port });
});
afterEach(async () => {
  await host.close();
  await fake.close();
});

const json = (method: "GET" | "POST", url: string, payload?: unknown) =>
  host.app.inject({
    method,
    url: `/api/v1${url}`,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

async function putBlob(data: Buffer): Promise<string> {
  const id = sha256hex(data);
  const res = await host.app.inject({
    method: "PUT",
    url: `/api/v1/blobs/${id}`,
    headers: { "content-type": "application/octet-stream" },
    payload: data,
  });
  expect(res.statusCode).toBe(201);
  return id;
}

describe("evidence, contract, health", () => {
  it("relays evidence for a well-formed nonce and refuses others without contacting the enclave", async () => {
    const nonce = "ab".repeat(32);
    const res = await json("GET", `/evidence?nonce=${nonce}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ platform: "sev-snp", nonce, keys: { ageRecipient: "age1x" } });
    expect(fake.received.map((r) => [r.path, r.query.get("nonce")])).toEqual([["/v1/evidence", nonce]]);

    for (const bad of [
      "abc",
      "AB".repeat(32),
      "ab".repeat(8 - 1),
      "ab".repeat(65),
      `${"ab".repeat(16)}&x=1`,
    ]) {
      const r = await json("GET", `/evidence?nonce=${bad}`);
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().error.code).toBe("ERR_VALIDATION");
    }
    expect(fake.received).toHaveLength(1);
  });

  it("relays the enclave's refusal with its status and code, and the contract once accepted", async () => {
    const none = await json("GET", "/contract");
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ error: { code: "ERR_NO_CONTRACT", message: "no contract" } });

    const body = {
      contract: { version: 1, id: "c1", nested: { a: [1, 2] } },
      approvals: [fakeJws({ a: 1 })],
    };
    const posted = await json("POST", "/contract", body);
    expect(posted.statusCode).toBe(200);
    expect(typeof posted.json().response).toBe("string");
    const sent = fake.received.find((r) => r.method === "POST" && r.path === "/v1/contract")!;
    expect(JSON.parse(sent.body.toString("utf8"))).toEqual(body);

    const got = await json("GET", "/contract");
    expect(got.json()).toEqual({ ...body, digest: "d".repeat(64) });
  });

  it("reports the enclave's health", async () => {
    const res = await json("GET", "/health");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      ok: true,
      enclave: { reachable: true, health: { ok: true, platform: "sev-snp" } },
    });
  });
});

describe("POST /grants", () => {
  it("relays the JWE, then streams exactly the stored bytes to ingest with the digest", async () => {
    const data = randomBytes(200_000);
    const digest = await putBlob(data);
    const jwe = fakeJwe("grant");
    const res = await json("POST", "/grants", { jwe, dataset: "sales", digest });
    expect(res.statusCode).toBe(200);
    const { grant, ingest } = res.json();
    expect(typeof grant.response).toBe("string");
    expect(ingest).toMatchObject({ quality: "cXVhbGl0eQ==" });

    const [request, ingestReq] = fake.received.filter((r) => r.method === "POST");
    expect(request!.path).toBe("/v1/requests");
    expect(JSON.parse(request!.body.toString("utf8"))).toEqual({ jwe });
    expect(ingestReq!.path).toBe("/v1/datasets/sales/ingest");
    expect(ingestReq!.query.get("digest")).toBe(digest);
    expect(ingestReq!.body.equals(data)).toBe(true);
  });

  it("refuses a grant for a blob it does not hold, before the enclave sees it", async () => {
    const res = await json("POST", "/grants", {
      jwe: fakeJwe("g"),
      dataset: "sales",
      digest: sha256hex("absent"),
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe("ERR_NOT_FOUND");
    expect(fake.received.filter((r) => r.method === "POST")).toEqual([]);
  });

  it("does not ingest when the enclave refuses the grant", async () => {
    const digest = await putBlob(randomBytes(10));
    fake.onRequest = () => ({
      status: 403,
      body: { error: { code: "ERR_NOT_PERMITTED", message: "not permitted" } },
    });
    const res = await json("POST", "/grants", { jwe: fakeJwe("g"), dataset: "sales", digest });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ error: { code: "ERR_NOT_PERMITTED", message: "not permitted" } });
    expect(fake.received.some((r) => r.path.endsWith("/ingest"))).toBe(false);
  });

  it("returns the signed grant answer alongside an ingest refusal", async () => {
    const digest = await putBlob(randomBytes(10));
    fake.onIngest = () => ({
      status: 409,
      body: { error: { code: "ERR_ALREADY_LOADED", message: "already loaded" } },
    });
    const res = await json("POST", "/grants", { jwe: fakeJwe("g"), dataset: "sales", digest });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("ERR_ALREADY_LOADED");
    expect(typeof res.json().grant.response).toBe("string");
  });

  it("refuses unknown fields and malformed dataset ids", async () => {
    const digest = sha256hex("x");
    for (const body of [
      { jwe: fakeJwe("g"), dataset: "sales", digest, extra: 1 },
      { jwe: fakeJwe("g"), dataset: "../sales", digest },
      { jwe: "not-a-jwe", dataset: "sales", digest },
    ]) {
      const res = await json("POST", "/grants", body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe("ERR_VALIDATION");
    }
    expect(fake.received).toEqual([]);
  });
});

describe("POST /queries and GET /results", () => {
  it("stores each recipient's ciphertext, retrievable by id and party", async () => {
    const alice = randomBytes(1234);
    const bob = randomBytes(77);
    let response = "";
    fake.onRequest = () => {
      response = fake.respond({ queryId: "q1" });
      return {
        status: 200,
        body: { response, results: { alice: alice.toString("base64"), bob: bob.toString("base64") } },
      };
    };
    const jwe = fakeJwe("query");
    const res = await json("POST", "/queries", { jwe });
    expect(res.statusCode).toBe(200);
    const { id, recipients } = res.json();
    expect(res.json().response).toBe(response);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(recipients).toEqual(["alice", "bob"]);
    expect(JSON.parse(fake.received.find((r) => r.method === "POST")!.body.toString("utf8"))).toEqual({
      jwe,
    });

    const a = await host.app.inject({ method: "GET", url: `/api/v1/results/${id}/alice` });
    expect(a.statusCode).toBe(200);
    expect(a.headers["content-type"]).toBe("application/octet-stream");
    expect(a.rawPayload.equals(alice)).toBe(true);
    const b = await host.app.inject({ method: "GET", url: `/api/v1/results/${id}/bob` });
    expect(b.rawPayload.equals(bob)).toBe(true);

    const meta = await json("GET", `/results/${id}`);
    expect(meta.json()).toEqual({ id, response, recipients: ["alice", "bob"] });

    expect((await json("GET", `/results/${id}/carol`)).statusCode).toBe(404);
    expect((await json("GET", `/results/${"0".repeat(32)}/alice`)).statusCode).toBe(404);
    expect((await json("GET", `/results/${"0".repeat(32)}`)).statusCode).toBe(404);
    expect((await json("GET", `/results/../alice`)).statusCode).toBeGreaterThanOrEqual(400);
    expect((await json("GET", `/results/${id}/..%2F..%2Fmeta`)).statusCode).toBe(400);
    expect((await json("GET", `/results/${id.toUpperCase()}/alice`)).statusCode).toBe(400);
  });

  it("treats a malformed enclave answer as a protocol error", async () => {
    fake.onRequest = () => ({ status: 200, body: { response: fakeJws({}), results: { "../x": "AAAA" } } });
    const res = await json("POST", "/queries", { jwe: fakeJwe("q") });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe("ERR_ENCLAVE_PROTOCOL");
  });
});

describe("audit", () => {
  it("appends the enclave's new entries after each mutating relay and serves them", async () => {
    fake.appendAudit("enclave-started", { signingKey: "k", keysDigest: "0".repeat(64) });
    await json("POST", "/contract", { contract: {}, approvals: [fakeJws({})] });
    const digest = await putBlob(randomBytes(10));
    await json("POST", "/grants", { jwe: fakeJwe("g"), dataset: "sales", digest });
    expect(fake.audit.length).toBe(4); // started, contract, grant, ingest

    // What the host stored before anyone asked for it.
    const lines = (await readFile(join(host.dir, "audit.jsonl"), "utf8")).trim().split("\n");
    expect(lines.map((l) => JSON.parse(l).jws)).toEqual(fake.audit);

    const res = await json("GET", "/audit");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ entries: fake.audit, head: fake.head });
    expect((await json("GET", "/audit?from=3")).json().entries).toEqual(fake.audit.slice(2));
    // Fetches always start after the stored head (the first two run before the contract is
    // relayed: the check that a restarted enclave took the stored log, then the relay's own).
    const froms = fake.received.filter((r) => r.path === "/v1/audit").map((r) => r.query.get("from"));
    expect(froms).toEqual(["1", "2", "2", "3", "5", "5"]);
  });

  it("serves the stored log after a restart, with the enclave gone", async () => {
    fake.appendAudit("enclave-started", { signingKey: "k", keysDigest: "0".repeat(64) });
    await json("POST", "/contract", { contract: {}, approvals: [fakeJws({})] });
    const entries = [...fake.audit];
    const dir = host.dir;
    const port = fake.port;
    await host.app.close();
    await fake.close();
    const again = await startHost({ host: "127.0.0.1", port }, { limits: { enclaveGetRetries: 0 } }, dir);
    try {
      const res = await again.app.inject({ method: "GET", url: "/api/v1/audit" });
      expect(res.statusCode).toBe(200);
      expect(res.json().entries).toEqual(entries);
      expect(res.json().head.seq).toBe(2);
    } finally {
      await again.close();
    }
    fake = await FakeEnclave.start(); // afterEach closes it
  });
});
