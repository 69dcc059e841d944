/**
 * Load: concurrent partner sessions (verify, upload, query) against one host + enclave on
 * loopback. No errors, bounded time and memory, fair progress, and every request each session
 * makes answered by the host: counted at the host's own HTTP server, by route and status. 30
 * sessions in `npm test`, 200 in `npm run fuzz`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Collaboration } from "../../scripts/demo/flow.js";
import { startTestStack, type TestStack } from "../e2e/stack.js";
import { report, size } from "../fuzz/harness.js";
import { runSessions, SESSION_QUERY, sessionParty } from "./sessions.js";
import { loadedCollaboration } from "./stack.js";

const SESSIONS = size(30, 200);
let stack: TestStack;
let collab: Collaboration;

beforeAll(async () => {
  stack = await startTestStack({ record: false });
  collab = await loadedCollaboration(stack.url, stack.simDir, stack.dir);
}, 120_000);
afterAll(() => stack?.stop());

interface Answered {
  method: string;
  path: string;
  status: number;
}

/** Every response the host's HTTP server finishes while counting. */
function countAtHost(app: FastifyInstance): { answered: Answered[]; stop(): void } {
  const answered: Answered[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.once("finish", () =>
      answered.push({
        method: req.method ?? "",
        path: (req.url ?? "").split("?")[0]!,
        status: res.statusCode,
      }),
    );
  };
  app.server.on("request", onRequest);
  return { answered, stop: () => app.server.off("request", onRequest) };
}

const BLOB = /^\/api\/v1\/blobs\/([0-9a-f]{64})(\/|$)/;

describe("concurrent partner sessions", () => {
  it(`${SESSIONS} sessions: no errors, bounded time and memory, fair progress`, {
    timeout: 600_000,
  }, async () => {
    const host = countAtHost(stack.app);
    const { figures, errors } = await runSessions(stack.url, stack.simDir, stack.dir, collab, SESSIONS);
    host.stop();
    const answered = host.answered;
    report({ suite: "load", name: `${SESSIONS}-sessions`, ...figures, requests: answered.length });
    expect(errors).toEqual([]);

    // Each session: fresh evidence, its query, its own result when its party is a recipient of
    // that query, and its upload; the host answered each, with no error beyond "no such blob yet".
    const count = (method: string, path: RegExp, status = 200) =>
      answered.filter((r) => r.method === method && path.test(r.path) && r.status === status).length;
    const recipients = (i: number) =>
      collab.contract.queries.find((q) => q.id === SESSION_QUERY[sessionParty(i)])!.recipients;
    const downloads = Array.from({ length: SESSIONS }, (_, i) => i).filter((i) =>
      recipients(i).includes(sessionParty(i)),
    ).length;
    expect(downloads).toBeGreaterThan(0);
    expect(count("GET", /^\/api\/v1\/evidence$/)).toBe(SESSIONS);
    expect(count("POST", /^\/api\/v1\/queries$/)).toBe(SESSIONS);
    expect(count("GET", /^\/api\/v1\/results\/[^/]+\/[^/]+$/)).toBe(downloads);
    const written = new Set(
      answered
        .filter((r) => ["PUT", "PATCH", "POST"].includes(r.method) && r.status < 300)
        .map((r) => BLOB.exec(r.path)?.[1])
        .filter((d) => d !== undefined),
    );
    expect(written.size).toBe(SESSIONS);
    const failed = answered.filter((r) => r.status >= 400 && !(r.status === 404 && BLOB.test(r.path)));
    expect(failed).toEqual([]);

    // Fair progress: nobody waits more than a few times the median session.
    expect(figures.fairness).toBeLessThan(4);
    expect(figures.wallMs).toBeLessThan(SESSIONS * 1_000);
    // Uploads stream to disk; nothing grows with the number of sessions beyond small state.
    expect(figures.heapGrowthMiB).toBeLessThan(256);
    // Every query ran once, and the audit log holds them all.
    expect(stack.enclave.health().head.seq).toBeGreaterThanOrEqual(SESSIONS);
  });
});
