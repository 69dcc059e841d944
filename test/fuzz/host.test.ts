/**
 * Fuzzing every host route through app.inject, with the real enclave behind it (contract and
 * datasets loaded): any body, query string, path parameter and content type gets either a
 * success or the documented error JSON {"error":{"code","message"}} with a documented code,
 * never an internal error, never a hang.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestStack, type TestStack } from "../e2e/stack.js";
import { loadedCollaboration } from "../load/stack.js";
import { type FuzzTarget, fuzz, jsonNear, report, size } from "./harness.js";

/** HOST.md's codes, plus the enclave's own refusals relayed unchanged (ERR_ + upper case). */
const HOST_CODES = new Set([
  "ERR_ENCLAVE_UNAVAILABLE",
  "ERR_ENCLAVE_TIMEOUT",
  "ERR_ENCLAVE_PROTOCOL",
  "ERR_VALIDATION",
  "ERR_MALFORMED_JSON",
  "ERR_TOO_LARGE",
  "ERR_MEDIA_TYPE",
  "ERR_DIGEST_MISMATCH",
  "ERR_BAD_ID",
  "ERR_NOT_FOUND",
  "ERR_RATE_LIMITED",
  "ERR_BAD_REQUEST",
]);

class BadAnswer extends Error {}

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ record: false });
  await loadedCollaboration(stack.url, stack.simDir, stack.dir, 200);
}, 120_000);
afterAll(() => stack?.stop());

interface Req {
  method: "GET" | "POST" | "PUT" | "HEAD";
  url: string;
  contentType: string;
  body: string | Buffer | undefined;
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const segment = fc.oneof(
  fc.string({ maxLength: 80 }),
  hex64,
  fc.constantFrom("..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "%00", "a".repeat(300)),
);
const jwsLike = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{1,40}$/);
const jweLike = fc
  .array(fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/), { minLength: 5, maxLength: 5 })
  .map((p) => p.join("."));
const bodies = fc.oneof(
  jsonNear({ jwe: "a.b.c.d.e" }),
  jsonNear({ jwe: "a.b.c.d.e", dataset: "advertiser_purchases", digest: "0".repeat(64) }),
  jsonNear({ contract: { version: 1 }, approvals: ["a.b.c"] }),
  fc.record({ jwe: jweLike }),
  fc.record({ jwe: jweLike, dataset: fc.string({ maxLength: 70 }), digest: hex64 }),
  fc.record({ contract: fc.jsonValue({ maxDepth: 3 }), approvals: fc.array(jwsLike, { maxLength: 3 }) }),
  fc.jsonValue({ maxDepth: 4 }),
);

const request: fc.Arbitrary<Req> = fc.oneof(
  fc.record({
    method: fc.constant("POST" as const),
    url: fc.constantFrom("/api/v1/queries", "/api/v1/grants", "/api/v1/contract"),
    contentType: fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8"),
    body: fc.oneof(
      bodies.map((b) => JSON.stringify(b) ?? "null"),
      fc.string({ unit: "binary", maxLength: 300 }),
    ),
  }),
  fc.record({
    method: fc.constantFrom("PUT" as const, "HEAD" as const, "GET" as const),
    url: segment.map((s) => `/api/v1/blobs/${encodeURIComponent(s)}`),
    contentType: fc.constantFrom("application/octet-stream", "application/json"),
    body: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  }),
  fc.record({
    method: fc.constant("GET" as const),
    url: fc.oneof(
      fc
        .tuple(segment, fc.option(segment))
        .map(
          ([a, b]) =>
            `/api/v1/results/${encodeURIComponent(a)}${b === null ? "" : `/${encodeURIComponent(b)}`}`,
        ),
      fc.string({ maxLength: 140 }).map((n) => `/api/v1/evidence?nonce=${encodeURIComponent(n)}`),
      fc.string({ maxLength: 20 }).map((n) => `/api/v1/audit?from=${encodeURIComponent(n)}`),
      fc.constantFrom("/api/v1/contract", "/api/v1/health", "/api/v1/evidence", "/api/v1/../../etc/passwd"),
    ),
    contentType: fc.constant("application/json"),
    body: fc.constant(undefined),
  }),
);

describe("host routes", () => {
  it("answer any request with success or the documented error JSON", { timeout: 3_600_000 }, async () => {
    const target: FuzzTarget<Req> = {
      name: "host-routes",
      arbitrary: request,
      run: async (r) => {
        const res = await stack.app.inject({
          method: r.method,
          url: r.url,
          headers: { "content-type": r.contentType },
          ...(r.body === undefined ? {} : { payload: r.body }),
        });
        if (res.statusCode < 400 || r.method === "HEAD") return;
        const body = res.json() as { error?: { code?: unknown; message?: unknown } };
        const code = body.error?.code;
        if (typeof code !== "string" || typeof body.error?.message !== "string")
          throw new BadAnswer("not error JSON");
        if (
          res.statusCode >= 500 &&
          !["ERR_ENCLAVE_UNAVAILABLE", "ERR_ENCLAVE_TIMEOUT", "ERR_ENCLAVE_PROTOCOL"].includes(code)
        ) {
          throw new BadAnswer(`internal error: ${code}`);
        }
        if (!HOST_CODES.has(code) && !/^ERR_[A-Z_]+$/.test(code))
          throw new BadAnswer(`undocumented code ${code}`);
        // Counted as a typed refusal by the harness.
        throw Object.assign(new Error(code), { code, refusal: true });
      },
      accept: (e) => (e as { refusal?: boolean }).refusal === true,
    };
    const f = await fuzz(target, { numRuns: size(400, 100_000), perCaseMs: 5_000, maxHeapGrowthMiB: 128 });
    report({ suite: "fuzz", name: target.name, ...f, codes: JSON.stringify(f.codes) });
    expect(f.refused).toBeGreaterThan(0);
    // The enclave kept working: a real request still succeeds afterwards.
    expect((await stack.app.inject({ method: "GET", url: "/api/v1/health" })).json()).toMatchObject({
      ok: true,
    });
  });
});
