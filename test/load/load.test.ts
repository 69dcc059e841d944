/**
 * Load: concurrent partner sessions (verify, upload, query) against one host + enclave on
 * loopback. No errors, bounded time and memory, fair progress. 30 sessions in `npm test`,
 * 200 in `npm run fuzz`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Collaboration } from "../../scripts/demo/flow.js";
import { startTestStack, type TestStack } from "../e2e/stack.js";
import { report, size } from "../fuzz/harness.js";
import { runSessions } from "./sessions.js";
import { loadedCollaboration } from "./stack.js";

const SESSIONS = size(30, 200);
let stack: TestStack;
let collab: Collaboration;

beforeAll(async () => {
  stack = await startTestStack({ record: false });
  collab = await loadedCollaboration(stack.url, stack.simDir, stack.dir);
}, 120_000);
afterAll(() => stack?.stop());

describe("concurrent partner sessions", () => {
  it(`${SESSIONS} sessions: no errors, bounded time and memory, fair progress`, {
    timeout: 600_000,
  }, async () => {
    const { figures, errors } = await runSessions(stack.url, stack.simDir, stack.dir, collab, SESSIONS);
    report({ suite: "load", name: `${SESSIONS}-sessions`, ...figures });
    expect(errors).toEqual([]);
    expect(figures.requests).toBe(SESSIONS * 4);
    // Fair progress: nobody waits more than a few times the median session.
    expect(figures.fairness).toBeLessThan(4);
    expect(figures.wallMs).toBeLessThan(SESSIONS * 1_000);
    // Uploads stream to disk; nothing grows with the number of sessions beyond small state.
    expect(figures.heapGrowthMiB).toBeLessThan(256);
    // Every query ran once, and the audit log holds them all.
    expect(stack.enclave.health().head.seq).toBeGreaterThanOrEqual(SESSIONS);
  });
});
