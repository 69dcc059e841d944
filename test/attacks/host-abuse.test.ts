/**
 * Host abuse while a normal partner session runs: oversized bodies, slow clients trickling
 * headers, malformed JSON, path traversal in blob and result ids, over-long ids. Each is refused
 * with the documented error JSON and logged by code; the concurrent session still succeeds and
 * nothing is written outside the store.
 */
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Collaboration } from "../../scripts/demo/flow.js";
import { startTestStack, type TestStack } from "../e2e/stack.js";
import { report } from "../fuzz/harness.js";
import { runSessions } from "../load/sessions.js";
import { loadedCollaboration } from "../load/stack.js";

let stack: TestStack;
let collab: Collaboration;
const HEADERS_TIMEOUT_MS = 1_000;

beforeAll(async () => {
  stack = await startTestStack({
    record: false,
    keepLogs: true,
    limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, maxBlobBytes: 1024 * 1024 },
  });
  collab = await loadedCollaboration(stack.url, stack.simDir, stack.dir, 200);
}, 120_000);
afterAll(() => stack?.stop());

interface Abuse {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  status: number;
  code: string;
}

const ABUSES: Abuse[] = [
  {
    name: "JSON body over the limit",
    method: "POST",
    path: "/api/v1/queries",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jwe: "a".repeat(3 * 1024 * 1024) }),
    status: 413,
    code: "ERR_TOO_LARGE",
  },
  {
    name: "blob over the limit",
    method: "PUT",
    path: `/api/v1/blobs/${"ab".repeat(32)}`,
    headers: { "content-type": "application/octet-stream" },
    body: new Uint8Array(2 * 1024 * 1024),
    status: 413,
    code: "ERR_TOO_LARGE",
  },
  {
    name: "malformed JSON",
    method: "POST",
    path: "/api/v1/queries",
    headers: { "content-type": "application/json" },
    body: '{"jwe": "a.b.c.d.e"',
    status: 400,
    code: "ERR_MALFORMED_JSON",
  },
  {
    name: "JSON with an unknown field",
    method: "POST",
    path: "/api/v1/queries",
    headers: { "content-type": "application/json" },
    body: '{"jwe":"a.b.c.d.e","x":1}',
    status: 400,
    code: "ERR_VALIDATION",
  },
  {
    name: "wrong media type",
    method: "POST",
    path: "/api/v1/queries",
    headers: { "content-type": "application/xml" },
    body: "<jwe/>",
    status: 415,
    code: "ERR_MEDIA_TYPE",
  },
  {
    name: "path traversal in a blob id",
    method: "PUT",
    path: "/api/v1/blobs/..%2F..%2F..%2Ftmp%2Fowned",
    headers: { "content-type": "application/octet-stream" },
    body: "x",
    status: 400,
    code: "ERR_VALIDATION",
  },
  {
    name: "dot-dot blob id (resolved away before any route)",
    method: "GET",
    path: "/api/v1/blobs/../../../etc/passwd",
    status: 404,
    code: "ERR_NOT_FOUND",
  },
  {
    name: "path traversal in a result id",
    method: "GET",
    path: "/api/v1/results/..%2F..%2Fblobs/advertiser",
    status: 400,
    code: "ERR_VALIDATION",
  },
  {
    name: "over-long path parameter (router refusal)",
    method: "GET",
    path: `/api/v1/results/${"a".repeat(300)}`,
    status: 414,
    code: "ERR_BAD_REQUEST",
  },
  {
    name: "digest that does not match the bytes",
    method: "PUT",
    path: `/api/v1/blobs/${"cd".repeat(32)}`,
    headers: { "content-type": "application/octet-stream" },
    body: "not those bytes",
    status: 400,
    code: "ERR_DIGEST_MISMATCH",
  },
];

/** Headers trickled one byte every `everyMs`; resolves with how long the server kept the socket. */
function slowloris(port: number, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect(port, "127.0.0.1");
    const text = "GET /api/v1/health HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let i = 0;
    const timer = setInterval(() => {
      if (!s.destroyed) s.write(i < text.length ? text[i++]! : "a");
    }, everyMs);
    s.on("close", () => {
      clearInterval(timer);
      resolve(performance.now() - t0);
    });
    s.on("error", () => undefined);
    s.resume();
  });
}

describe("host abuse, with a normal session running", () => {
  it("refuses every abuse with the documented error JSON; the normal sessions all succeed", async () => {
    const port = Number(new URL(stack.url).port);
    const normal = runSessions(stack.url, stack.simDir, stack.dir, collab, 4);
    const loris = Array.from({ length: 20 }, () => slowloris(port, 100));
    let refused = 0;
    for (const a of ABUSES) {
      const res = await fetch(`${stack.url}${a.path}`, {
        method: a.method,
        headers: a.headers ?? {},
        ...(a.body === undefined ? {} : { body: a.body as BodyInit }),
      });
      expect(res.status, a.name).toBe(a.status);
      if (a.method !== "HEAD") {
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code, a.name).toBe(a.code);
        // Fixed messages: the request's own bytes are never echoed.
        expect(body.error.message).not.toMatch(/aaaa|\.\.|owned|<jwe/);
      }
      refused += 1;
    }
    const held = await Promise.all(loris);
    // Each slow client is cut near the headers timeout, not held open indefinitely.
    for (const ms of held) expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 3_000);
    const { figures, errors } = await normal;
    expect(errors).toEqual([]);
    // Nothing landed outside the store, and no blob was created by the abuse.
    expect(existsSync("/tmp/owned")).toBe(false);
    expect(readdirSync(join(stack.storeDir, "blobs")).some((n) => n.includes(".."))).toBe(false);
    // Refusals are logged by code, without the request bytes.
    const logs = stack.logs.join("");
    for (const code of ["ERR_TOO_LARGE", "ERR_MALFORMED_JSON", "ERR_DIGEST_MISMATCH", "ERR_VALIDATION"])
      expect(logs).toContain(code);
    expect(logs).not.toContain("aaaaaaaa");
    report({
      suite: "host-abuse",
      name: "abuse-with-normal-session",
      abusesRefused: refused,
      slowClientsCut: held.length,
      slowestCutMs: Math.round(Math.max(...held)),
      normalSessionsOk: figures.sessions - figures.failed,
    });
  });
});
