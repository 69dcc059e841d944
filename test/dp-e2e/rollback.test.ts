/**
 * Budgets survive a restart and cannot be rolled back. A restarted enclave given the full audit
 * log rebuilds the privacy ledger from the query-run entries, so the budget spent before the
 * restart still counts. A host that gives a restarted enclave an older (validly signed) prefix of
 * the log, so an older ledger, is caught as soon as a party presents the newer head it saw:
 * ERR_AUDIT_ROLLBACK.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buyers, Clients, data, NOBODY } from "./setup.js";

const csv = data();
const params = { category: "shoes", exclude: NOBODY };
const code = (c: string) => expect.objectContaining({ code: c });
let first: Clients;
let fullLog: string[];
let olderLog: string[];
const opened: Clients[] = [];

beforeAll(async () => {
  first = await Clients.start([buyers("buyers-dp", { epsilon: 1, budget: 3, maxRowsPerIdentity: 5 })]);
  opened.push(first);
  await first.load(csv);
  await first.run(first.publisher, "buyers-dp", params);
  olderLog = first.enclave.audit(1).entries; // the host keeps a copy from after the first run
  await first.run(first.publisher, "buyers-dp", params);
  fullLog = first.enclave.audit(1).entries;
});
afterAll(() => {
  for (const c of opened) c.close();
});

describe("privacy ledger across restarts", () => {
  it("a faithful restore keeps every party's spending: one run left of three", async () => {
    const second = await first.restart(fullLog);
    opened.push(second);
    await second.load(csv);
    const { body } = await second.run(second.publisher, "buyers-dp", params);
    expect(body.epsilon).toBe(1);
    await expect(second.run(second.publisher, "buyers-dp", params)).rejects.toEqual(code("ERR_DP_BUDGET"));
  });

  it("a restore from an older log is refused once the party presents the head it saw", async () => {
    const rolledBack = await first.restart(olderLog);
    opened.push(rolledBack);
    await rolledBack.load(csv);
    expect(rolledBack.heads.get("publisher")!.seq).toBeGreaterThan(olderLog.length);
    await expect(rolledBack.run(rolledBack.publisher, "buyers-dp", params)).rejects.toEqual(
      code("ERR_AUDIT_ROLLBACK"),
    );
  });

  it("the refusal is what stops the replay: a client that forgot its head would get budget back", async () => {
    const rolledBack = await first.restart(olderLog);
    opened.push(rolledBack);
    await rolledBack.load(csv);
    rolledBack.heads.clear();
    // Two runs succeed here although only one of three was left: the spent run was rolled back.
    await rolledBack.run(rolledBack.publisher, "buyers-dp", params);
    await rolledBack.run(rolledBack.publisher, "buyers-dp", params);
    await expect(rolledBack.run(rolledBack.publisher, "buyers-dp", params)).rejects.toEqual(
      code("ERR_DP_BUDGET"),
    );
  });
});
