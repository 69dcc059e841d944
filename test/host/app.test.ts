import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeEnclave, fakeJwe } from "./fake-enclave.js";
import { startHost, type TestHost } from "./helpers.js";

let fake: FakeEnclave;
let host: TestHost;

beforeEach(async () => {
  fake = await FakeEnclave.start();
  host = await startHost({ host: "127.0.0.1", port: fake.port }, { limits: { jsonBodyBytes: 64 * 1024 } });
});
afterEach(async () => {
  await host.close();
  await fake.close();
});

const postRaw = (url: string, payload: string, contentType = "application/json") =>
  host.app.inject({
    method: "POST",
    url: `/api/v1${url}`,
    headers: { "content-type": contentType },
    payload,
  });

describe("request bodies", () => {
  it("refuses malformed JSON with 400 ERR_MALFORMED_JSON", async () => {
    for (const body of ['{"jwe": ', "{'jwe': 1}", '{"jwe":"a"}}', ""]) {
      const res = await postRaw("/queries", body);
      expect(res.statusCode, body).toBe(400);
      expect(res.json().error.code, body).toBe("ERR_MALFORMED_JSON");
    }
    expect(fake.received).toEqual([]);
  });

  it("refuses JSON over the body limit with 413 ERR_TOO_LARGE", async () => {
    const res = await postRaw("/queries", JSON.stringify({ jwe: fakeJwe("x".repeat(70 * 1024)) }));
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe("ERR_TOO_LARGE");
    expect(fake.received).toEqual([]);
  });

  it("refuses other content types with 415 and prototype pollution with 400", async () => {
    expect((await postRaw("/queries", "jwe=x", "application/x-www-form-urlencoded")).statusCode).toBe(415);
    const proto = await postRaw("/queries", '{"jwe":"a.b.c.d.e","__proto__":{"x":1}}');
    expect(proto.statusCode).toBe(400);
    expect(fake.received).toEqual([]);
  });
});

describe("HTTP surface", () => {
  it("sets helmet's security headers", async () => {
    const res = await host.app.inject({ method: "GET", url: "/api/v1/audit" });
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(res.headers["strict-transport-security"]).toMatch(/max-age=/);
    expect(res.headers["content-security-policy"]).toMatch(/default-src 'self'/);
    expect(res.headers["x-powered-by"]).toBeUndefined();
  });

  it("answers unknown routes with a typed 404", async () => {
    const res = await host.app.inject({ method: "GET", url: "/api/v1/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: "ERR_NOT_FOUND", message: "no such route" } });
  });

  it("serves an OpenAPI document listing every route with its schemas", async () => {
    const res = await host.app.inject({ method: "GET", url: "/api/v1/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        "get /api/v1/health",
        "get /api/v1/health/live",
        "get /api/v1/health/ready",
        "get /api/v1/evidence",
        "get /api/v1/contract",
        "post /api/v1/contract",
        "put /api/v1/blobs/{sha256}",
        "head /api/v1/blobs/{sha256}",
        "patch /api/v1/blobs/{sha256}",
        "get /api/v1/blobs/{sha256}/upload",
        "post /api/v1/grants",
        "get /api/v1/grants/progress",
        "post /api/v1/queries",
        "get /api/v1/results",
        "get /api/v1/results/{id}",
        "get /api/v1/results/{id}/{party}",
        "get /api/v1/audit",
      ].sort(),
    );
    const grants = doc.paths["/api/v1/grants"]!.post as {
      requestBody: unknown;
      responses: Record<string, unknown>;
    };
    expect(grants.requestBody).toBeDefined();
    expect(Object.keys(grants.responses)).toEqual(expect.arrayContaining(["200", "4XX", "5XX"]));
  });
});

describe("rate limiting", () => {
  it("limits a remote address while loopback stays loose", async () => {
    const limited = await startHost(
      { host: "127.0.0.1", port: fake.port },
      { rateLimit: { max: 3, loopbackMax: 50 } },
    );
    try {
      const from = (remoteAddress: string) =>
        limited.app.inject({ method: "GET", url: "/api/v1/audit", remoteAddress });
      for (let i = 0; i < 3; i++) expect((await from("203.0.113.9")).statusCode).toBe(200);
      const refused = await from("203.0.113.9");
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe("ERR_RATE_LIMITED");
      for (let i = 0; i < 10; i++) expect((await from("127.0.0.1")).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
