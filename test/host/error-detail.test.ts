/**
 * The host relays an enclave refusal's sealed `detail` (base64 of an age file to the requesting
 * party) byte for byte, on every relay route, and never logs it; an error body whose `detail` is
 * not of that form is not relayed (ERR_ENCLAVE_PROTOCOL).
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeEnclave, fakeJwe } from "./fake-enclave.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

let fake: FakeEnclave;
let host: TestHost;
const logs: string[] = [];

beforeEach(async () => {
  logs.length = 0;
  fake = await FakeEnclave.start();
  host = await startHost(
    { host: "127.0.0.1", port: fake.port },
    { logger: { level: "info", stream: { write: (line: string) => void logs.push(line) } } },
  );
});
afterEach(async () => {
  await host.close();
  await fake.close();
});

const detail = randomBytes(2300).toString("base64");
const refusal = (code: string, d: unknown = detail) => ({
  status: 400,
  body: { error: { code, message: "fixed text", detail: d } },
});

async function putBlob(data: Buffer): Promise<string> {
  const id = sha256hex(data);
  await host.app.inject({
    method: "PUT",
    url: `/api/v1/blobs/${id}`,
    headers: { "content-type": "application/octet-stream" },
    payload: data,
  });
  return id;
}

describe("a refusal's sealed detail", () => {
  it("is relayed untouched for a query and for an ingest, and not logged", async () => {
    fake.onRequest = () => refusal("ERR_QUERY_PARAMETER");
    const q = await host.app.inject({
      method: "POST",
      url: "/api/v1/queries",
      payload: { jwe: fakeJwe("q") },
    });
    expect(q.statusCode).toBe(400);
    expect(q.json()).toEqual({ error: { code: "ERR_QUERY_PARAMETER", message: "fixed text", detail } });

    fake.onRequest = () => ({ status: 200, body: { response: "granted" } });
    const digest = await putBlob(randomBytes(10));
    fake.onIngest = () => refusal("ERR_INGEST_SCHEMA");
    const g = await host.app.inject({
      method: "POST",
      url: "/api/v1/grants",
      payload: { jwe: fakeJwe("g"), dataset: "sales", digest },
    });
    expect(g.statusCode, g.body).toBe(400);
    expect(g.json().error).toEqual({ code: "ERR_INGEST_SCHEMA", message: "fixed text", detail });
    // The refusals are logged, by code only.
    expect(logs.join("\n")).toContain("ERR_INGEST_SCHEMA");
    expect(logs.join("\n")).not.toContain(detail.slice(0, 40));
  });

  it("that is not base64, or too large, is not relayed", async () => {
    for (const bad of ["row 7 column amount", 42, "A".repeat(16 * 1024 + 4)]) {
      fake.onRequest = () => refusal("ERR_QUERY_PARAMETER", bad);
      const res = await host.app.inject({
        method: "POST",
        url: "/api/v1/queries",
        payload: { jwe: fakeJwe("q") },
      });
      expect(res.statusCode).toBe(502);
      expect(res.json()).toEqual({
        error: { code: "ERR_ENCLAVE_PROTOCOL", message: "enclave answer malformed" },
      });
    }
  });
});
