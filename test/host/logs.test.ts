import { afterEach, beforeEach, expect, it } from "vitest";
import { FakeEnclave, fakeJws } from "./fake-enclave.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

// Base64url-safe, so it can sit literally inside a JWE/JWS segment.
const CANARY = "CANARYq7Zf3a9Xw";
const jwe = `eyJhbGciOiJFQ0RILUVTIn0..aXY.${CANARY}.dGFn`;

let fake: FakeEnclave;
let host: TestHost;
const lines: string[] = [];

beforeEach(async () => {
  lines.length = 0;
  fake = await FakeEnclave.start();
  host = await startHost(
    { host: "127.0.0.1", port: fake.port },
    { logger: { level: "trace", stream: { write: (line: string) => lines.push(line) } } },
  );
});
afterEach(async () => {
  await host.close();
  await fake.close();
});

it("logs method, route, status, sizes and durations, and never a payload", async () => {
  const { app } = host;
  fake.onRequest = () => ({
    status: 200,
    body: { response: fakeJws({ body: CANARY }), results: { alice: Buffer.from(CANARY).toString("base64") } },
  });

  const blob = Buffer.from(`age-encryption.org/v1\n${CANARY}\n`);
  const digest = sha256hex(blob);
  const octet = { "content-type": "application/octet-stream" };
  await app.inject({ method: "PUT", url: `/api/v1/blobs/${digest}`, headers: octet, payload: blob });
  await app.inject({ method: "PUT", url: `/api/v1/blobs/${sha256hex("x")}`, headers: octet, payload: blob });
  const query = await app.inject({ method: "POST", url: "/api/v1/queries", payload: { jwe } });
  expect(query.statusCode).toBe(200);
  const id = query.json().id as string;
  const result = await app.inject({ method: "GET", url: `/api/v1/results/${id}/alice` });
  expect(result.rawPayload.toString()).toBe(CANARY);
  await app.inject({ method: "POST", url: "/api/v1/grants", payload: { jwe, dataset: "sales", digest } });
  const approval = `${CANARY}.${CANARY}.${CANARY}`;
  const contract = await app.inject({
    method: "POST",
    url: "/api/v1/contract",
    payload: { contract: { n: CANARY }, approvals: [approval] },
  });
  expect(contract.statusCode).toBe(200);
  // Refusals whose framework messages would quote the input.
  const json = { "content-type": "application/json" };
  await app.inject({ method: "POST", url: "/api/v1/queries", headers: json, payload: `{"jwe": ${CANARY}}` });
  await app.inject({ method: "POST", url: "/api/v1/queries", payload: { jwe, [CANARY]: 1 } });
  await app.inject({ method: "POST", url: "/api/v1/queries", payload: { jwe: `${CANARY}!` } });

  expect(lines.length).toBeGreaterThan(8);
  for (const line of lines) expect(line).not.toContain(CANARY);

  const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  expect(requests).toContainEqual(
    expect.objectContaining({
      method: "POST",
      route: "/api/v1/queries",
      status: 200,
      ms: expect.any(Number),
    }),
  );
  expect(requests).toContainEqual(
    expect.objectContaining({
      method: "PUT",
      route: "/api/v1/blobs/:sha256",
      status: 201,
      reqBytes: blob.length,
    }),
  );
  expect(requests.filter((r) => r.status === 400).length).toBeGreaterThanOrEqual(3);
});
