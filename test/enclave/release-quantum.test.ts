/**
 * The release quantum: a query's answer leaves no earlier than a whole number of quanta after its
 * run started, and the audit entry (which the host can poll) is appended no earlier either. Two
 * queries whose raw run times differ clearly take the same time when both fit in one quantum.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { releaseTime } from "../../enclave/queries.js";
import type { ApprovedQuery } from "../../protocol/contract/types.js";
import { hashedEmail } from "../sql/usecases.js";
import { openWorld, referrals, referrersSelfJoin, sealed, serveCsv, utf8, type World } from "./world.js";

const policy = (allowedColumns: string[]) => ({
  kind: "aggregation" as const,
  minDistinctIdentities: 10,
  allowedColumns,
  differencingGuard: false,
});

/** One group: fast. */
const fast: ApprovedQuery = {
  id: "fast",
  sql: "SELECT count(DISTINCT r.user_id) AS n FROM referrals r WHERE r.referrer = $referrer",
  parameters: [{ name: "referrer", type: "VARCHAR" }],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: policy(["n"]),
};

/** Every referrer's group, each through the k check, over a self-join: clearly slower. */
const slow = referrersSelfJoin;

const ROWS = 120_000;

function csv(): string {
  const lines = ["user_id,referrer"];
  for (let i = 0; i < ROWS; i++) lines.push(`${hashedEmail(i)},ref${i % 6000}@example.com`);
  return `${lines.join("\n")}\n`;
}

async function open(releaseQuantumMs: number, data: Uint8Array): Promise<World> {
  const room = await openWorld([fast, slow], [referrals], { releaseQuantumMs });
  await serveCsv(room.enclave, room.contract, room.publisher, referrals.id, data, { pieceSize: 1 << 20 });
  return room;
}

/** Milliseconds from sending the request to the answer, as the host measures it. */
async function timed(room: World, q: ApprovedQuery): Promise<number> {
  const jwe = await sealed(room.enclave, room.contract, room.advertiser, "query", {
    queryId: q.id,
    params: q.parameters.length ? { referrer: "ref7@example.com" } : {},
    resultFormat: "csv",
  });
  const t0 = performance.now();
  await room.enclave.handleRequest(jwe);
  return performance.now() - t0;
}

const best = async (n: number, f: () => Promise<number>) => {
  let m = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) m = Math.min(m, await f());
  return m;
};

describe("releaseTime", () => {
  it("rounds the run's duration up to a whole number of quanta, at least one", () => {
    expect(releaseTime(1000, 1000, 250)).toBe(1250);
    expect(releaseTime(1000, 1001, 250)).toBe(1250);
    expect(releaseTime(1000, 1250, 250)).toBe(1250);
    expect(releaseTime(1000, 1250.5, 250)).toBe(1500);
    expect(releaseTime(1000, 1900, 250)).toBe(2000);
    // No quantum: at once.
    expect(releaseTime(1000, 1007, 0)).toBe(1007);
  });
});

describe("a real quantum", () => {
  const data = utf8(csv());
  let raw: World;
  let held: World;
  let rawFast: number;
  let rawSlow: number;
  let quantum: number;

  beforeAll(async () => {
    raw = await open(0, data);
    // Warm both statements, then take the best of a few runs without a quantum.
    rawFast = await best(3, () => timed(raw, fast));
    rawSlow = await best(3, () => timed(raw, slow));
    // A quantum that both fit in, whatever this machine's speed.
    quantum = Math.max(300, Math.ceil(rawSlow * 3));
    held = await open(quantum, data);
  }, 120_000);
  afterAll(() => {
    raw?.enclave.close();
    held?.enclave.close();
  });

  it("the two queries differ clearly without a quantum", () => {
    expect(rawSlow - rawFast).toBeGreaterThan(15);
    expect(rawSlow).toBeGreaterThan(2 * rawFast);
  });

  it("with it, the fast and the slow query both answer after one quantum", async () => {
    const f = await best(2, () => timed(held, fast));
    const s = await best(2, () => timed(held, slow));
    for (const t of [f, s]) {
      expect(t).toBeGreaterThanOrEqual(quantum - 1);
      // One quantum, plus the commit and signature after it (far less than the raw difference).
      expect(t).toBeLessThan(quantum + Math.max(100, rawSlow));
    }
    // What the host can still measure between them is noise, not the run time difference.
    expect(Math.abs(s - f)).toBeLessThan(Math.max(40, (rawSlow - rawFast) / 2));
  }, 30_000);

  it("the audit log moves no earlier than the answer", async () => {
    const before = held.enclave.health().head.seq;
    const jwe = await sealed(held.enclave, held.contract, held.advertiser, "query", {
      queryId: fast.id,
      params: { referrer: "ref8@example.com" },
      resultFormat: "csv",
    });
    const t0 = performance.now();
    const answer = held.enclave.handleRequest(jwe);
    await new Promise((r) => setTimeout(r, quantum / 2));
    // The run is long done; its entry is not on the chain yet.
    expect(held.enclave.health().head.seq).toBe(before);
    expect(held.enclave.audit(1).entries).toHaveLength(before);
    await answer;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(quantum - 1);
    expect(held.enclave.health().head.seq).toBe(before + 1);
  }, 30_000);
});
