/**
 * The host and a restarted enclave: the stored log is handed over before any contract, and when
 * the enclave does not take it, no contract is relayed to it (503 ERR_AUDIT_RESTORE_FAILED, the
 * error code alone in the log) until a restore succeeds. Entries that do not continue the stored
 * copy are not stored.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeEnclave, fakeJws } from "./fake-enclave.js";
import { startHost, type TestHost } from "./helpers.js";

let fake: FakeEnclave;
let host: TestHost;
let lines: string[];

beforeEach(async () => {
  fake = await FakeEnclave.start();
  lines = [];
  host = await startHost(
    { host: "127.0.0.1", port: fake.port },
    { logger: { level: "info", stream: { write: (line: string) => lines.push(line) } } },
  );
});
afterEach(async () => {
  await host.close();
  await fake.close();
});

const contract = () =>
  host.app.inject({
    method: "POST",
    url: "/api/v1/contract",
    payload: { contract: {}, approvals: [fakeJws({})] },
  });
const stored = async () => (await host.app.inject({ method: "GET", url: "/api/v1/audit" })).json();

/** A first instance that took the contract and wrote a few entries, all stored by the host. */
async function firstInstance(): Promise<string[]> {
  fake.appendAudit("enclave-started", { signingKey: "k", keysDigest: "0".repeat(64) });
  expect((await contract()).statusCode).toBe(200);
  fake.appendAudit("event", { n: 1 });
  const log = await stored();
  expect(log.entries).toEqual(fake.audit);
  return [...fake.audit];
}

describe("restoring a restarted enclave", () => {
  it("hands the stored log over before the contract, then relays it", async () => {
    const before = await firstInstance();
    fake.restart();
    expect((await contract()).statusCode).toBe(200);
    const restores = fake.received.filter((r) => r.path === "/v1/audit/restore");
    expect(restores.map((r) => JSON.parse(r.body.toString("utf8")))).toMatchObject([{ entries: before }]);
    // The stored copy continues: the old entries, the new instance's first entry, the contract.
    const log = await stored();
    expect(log.entries.slice(0, before.length)).toEqual(before);
    expect(log.entries).toEqual(fake.audit);
  });

  it("relays no contract to an enclave that refused the log, until a restore succeeds", async () => {
    const before = await firstInstance();
    fake.restart();
    const accept = fake.onRestore;
    fake.onRestore = () => ({
      status: 400,
      body: { error: { code: "ERR_AUDIT_RESTORE", message: "audit restore refused at entry 2: secret-ish" } },
    });
    const contracts = () => fake.received.filter((r) => r.path === "/v1/contract").length;
    const relayed = contracts();
    for (let i = 0; i < 2; i++) {
      const res = await contract();
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({
        error: { code: "ERR_AUDIT_RESTORE_FAILED", message: expect.any(String) },
      });
    }
    expect(contracts()).toBe(relayed);
    // The stored log is untouched: the restarted enclave's entries do not continue it.
    expect((await stored()).entries).toEqual(before);
    // The log names the error code, not the enclave's message.
    const failure = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "audit restore failed");
    expect(failure).toMatchObject({ errCode: "ERR_ENCLAVE_REJECTED", enclaveCode: "ERR_AUDIT_RESTORE" });
    expect(lines.join("\n")).not.toMatch(/secret-ish|refused at entry/);

    // The operator fixes it; the next contract is relayed after a successful restore.
    fake.onRestore = accept;
    expect((await contract()).statusCode).toBe(200);
    expect(contracts()).toBe(relayed + 1);
    expect((await stored()).entries).toEqual(fake.audit);
  });

  it("does not store entries that do not continue its copy", async () => {
    const before = await firstInstance();
    // A different chain of the same length and more: it does not link to the stored head.
    fake.restart();
    fake.contract = { taken: true }; // it already took a contract: not restored
    fake.appendAudit("event", { n: 2 });
    fake.appendAudit("event", { n: 3 });
    fake.appendAudit("event", { n: 4 });
    expect(fake.audit.length).toBeGreaterThan(before.length);
    expect((await stored()).entries).toEqual(before);
    expect(lines.some((l) => JSON.parse(l).errCode === "ERR_AUDIT_CONTINUITY")).toBe(true);
  });
});
