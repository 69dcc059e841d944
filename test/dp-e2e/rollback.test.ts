/**
 * Budgets survive a restart and cannot be rolled back. A restarted enclave given the full audit
 * log verifies it and rebuilds every party's spending from the query-run entries, so the budget
 * spent before the restart still counts. A host that gives a restarted enclave an older, validly
 * signed prefix of the log is caught by the parties' heads: a party that saw a later head is
 * refused (ERR_AUDIT_ROLLBACK) on its next grant or query, and a budgeted query runs only once
 * the requester, or every other party, has shown a head of the restored part
 * (ERR_AUDIT_HEAD_REQUIRED before that).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { buyers, Clients, data, NOBODY } from "./setup.js";

const csv = data();
const params = { category: "shoes", exclude: NOBODY };
const code = (c: string) => expect.objectContaining({ code: c });
let first: Clients;
let fullLog: string[];
let olderLog: string[];
/** The head of the second run (the one the older log leaves out). */
let secondRun: AuditHead;
const opened: Clients[] = [];

beforeAll(async () => {
  first = await Clients.start([buyers("buyers-dp", { epsilon: 1, budget: 3, maxRowsPerIdentity: 5 })]);
  opened.push(first);
  await first.load(csv);
  await first.run(first.publisher, "buyers-dp", params);
  olderLog = first.enclave.audit(1).entries; // the host keeps a copy from after the first run
  secondRun = (await first.run(first.publisher, "buyers-dp", params)).body.head;
  fullLog = first.enclave.audit(1).entries;
});
afterAll(() => {
  for (const c of opened) c.close();
});

async function restart(entries: string[]): Promise<Clients> {
  const next = await first.restart(entries);
  opened.push(next);
  return next;
}

describe("privacy budget across restarts", () => {
  it("a faithful restore keeps every party's spending: one run left of three", async () => {
    const second = await restart(fullLog);
    await second.load(csv); // both owners re-grant, showing the heads they saw
    const { body } = await second.run(second.publisher, "buyers-dp", params);
    expect(body.epsilon).toBe(1);
    await expect(second.run(second.publisher, "buyers-dp", params)).rejects.toEqual(code("ERR_DP_BUDGET"));
  });

  it("a restore from an older log verifies, but the party that saw later is refused at once", async () => {
    const rolledBack = await restart(olderLog);
    expect(rolledBack.heads.get("publisher")).toEqual(secondRun);
    expect(secondRun.seq).toBeGreaterThan(olderLog.length);
    // The publisher's re-grant presents the head of its second run: the restored log lacks it.
    await expect(rolledBack.load(csv)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    await expect(rolledBack.run(rolledBack.publisher, "buyers-dp", params)).rejects.toEqual(
      code("ERR_AUDIT_ROLLBACK"),
    );
  });

  it("a requester that forgot its head waits for every other party, who refuses a log without what it saw", async () => {
    const rolledBack = await restart(olderLog);
    rolledBack.heads.delete("publisher");
    // The advertiser, a recipient of both runs, fetched the second one's result: it saw its head.
    rolledBack.saw("advertiser", secondRun);
    await expect(rolledBack.load(csv)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    // Nobody vouched for the restored log: the budgeted query is refused, with the next step.
    const refused = rolledBack.run(rolledBack.publisher, "buyers-dp", params);
    await expect(refused).rejects.toEqual(code("ERR_AUDIT_HEAD_REQUIRED"));
    await expect(refused).rejects.toThrow(/send the last audit head this party saw/);
  });

  it("a party with no state and no other party holding its later head: the residual", async () => {
    // Neither the publisher's own head nor any head of the second run is held by anyone: the
    // advertiser vouches for the older log (it holds everything the advertiser saw), and the
    // publisher gets the spent run back. docs/THREAT-MODEL.md names this residual.
    const rolledBack = await restart(olderLog);
    rolledBack.heads.delete("publisher");
    expect(rolledBack.heads.get("advertiser")!.seq).toBeLessThanOrEqual(olderLog.length);
    await rolledBack.load(csv);
    await rolledBack.run(rolledBack.publisher, "buyers-dp", params);
    await rolledBack.run(rolledBack.publisher, "buyers-dp", params);
    await expect(rolledBack.run(rolledBack.publisher, "buyers-dp", params)).rejects.toEqual(
      code("ERR_DP_BUDGET"),
    );
  });
});
