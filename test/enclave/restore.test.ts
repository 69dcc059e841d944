/**
 * A restart with a restored audit log: the restarted enclave verifies every entry of the log it is
 * given (links, order, every signature, and each instance's evidence under its own platform,
 * image and simulated root) before it rebuilds run counts and budgets. A reordered, forged or
 * re-signed log, and evidence from another image, another root or another chain position, are
 * refused (ERR_AUDIT_RESTORE, naming the entry) and change nothing. A truncated log verifies (it
 * is a valid prefix), so run-limited and budgeted queries then need a head of the restored part
 * from the requester or from every other party; a head the log lacks is ERR_AUDIT_ROLLBACK.
 */
import { base64url } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { errorReply } from "../../enclave/http-errors.js";
import type { Enclave } from "../../enclave/runtime.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import { AuditLog } from "../../protocol/audit/log.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import type { ApprovedQuery, Contract } from "../../protocol/contract/types.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { makeInstance } from "../protocol/instance.js";
import { hashedEmail, K } from "../sql/usecases.js";
import { simProvider, testPlatform, testPolicy } from "./sim.js";
import {
  admit,
  contractFor,
  makeParties,
  type Party,
  people,
  peopleByGroup,
  sealed,
  serveCsv,
  startEnclave,
} from "./world.js";

const query = (id: string, maxRuns?: number): ApprovedQuery =>
  peopleByGroup(id, { differencingGuard: false, ...(maxRuns !== undefined ? { maxRuns } : {}) }, [
    "advertiser",
    "publisher",
  ]);
const limited = query("limited", 3);
const open = query("unlimited");
const rows = ["user_id,grp", ...Array.from({ length: K }, (_, i) => `${hashedEmail(i)},a`)];
const csv = `${rows.join("\n")}\n`;

const code = (c: string) => expect.objectContaining({ code: c });
const opened: Enclave[] = [];
let advertiser: Party;
let publisher: Party;
let contract: Contract;
let rogue: SimPlatform;
/** The first instance's log after two runs of `limited`, and the heads each party saw. */
let fullLog: string[];
let afterFirstRun: string[];
let heads: { advertiser: AuditHead; publisher: AuditHead };

async function fresh(o: Parameters<typeof startEnclave>[0] = {}): Promise<Enclave> {
  const e = await startEnclave(o);
  opened.push(e);
  return e;
}

/** Runs `queryId` as `party`, presenting `auditHead` when given; returns the signed head. */
async function run(
  enclave: Enclave,
  party: Party,
  queryId: string,
  auditHead?: AuditHead,
): Promise<AuditHead> {
  const reply = await enclave.handleRequest(
    await sealed(enclave, contract, party, "query", {
      queryId,
      params: {},
      resultFormat: "json",
      ...(auditHead ? { auditHead } : {}),
    }),
  );
  return (await verifyResponse<{ head: AuditHead }>(reply.response, enclave.keys.publicKeys.signingKey)).body
    .head;
}

/** Admits the contract and loads the people (the owner presenting `auditHead`); returns the owner's head. */
async function serve(enclave: Enclave, auditHead?: AuditHead): Promise<AuditHead> {
  await admit(enclave, contract, [advertiser, publisher]);
  const { loaded } = await serveCsv(enclave, contract, advertiser, people.id, csv, {
    toEnclave: true,
    ...(auditHead ? { auditHead } : {}),
  });
  return (await verifyResponse<{ head: AuditHead }>(loaded.response, enclave.keys.publicKeys.signingKey)).body
    .head;
}

/** A restarted instance given `entries`. */
async function restarted(entries: string[]): Promise<Enclave> {
  const e = await fresh();
  await e.restoreAudit({ entries });
  return e;
}

/** The entry at `i` with its payload edited and re-encoded (the signature no longer covers it). */
function edited(jws: string, edit: (entry: Record<string, unknown>) => void): string {
  const [h, p, s] = jws.split(".") as [string, string, string];
  const entry = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
  edit(entry);
  return `${h}.${base64url.encode(canonicalBytes(entry))}.${s}`;
}

/** Expects `restoreAudit(entries)` refused at `seq`, with the enclave exactly as it was. */
async function refusedAt(entries: string[], seq: number, reason?: RegExp): Promise<void> {
  const e = await fresh();
  const before = e.audit(1);
  const err = await e.restoreAudit({ entries }).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(err).toEqual(expect.objectContaining({ code: "ERR_AUDIT_RESTORE", seq }));
  if (reason) expect((err as Error).message).toMatch(reason);
  expect(errorReply(err).status).toBe(400);
  expect(e.audit(1)).toEqual(before);
  // Nothing changed: the same instance still takes the genuine log.
  const { head } = await e.restoreAudit({ entries: fullLog });
  expect(head.seq).toBe(fullLog.length + 1);
}

beforeAll(async () => {
  ({ advertiser, publisher } = await makeParties());
  contract = contractFor([advertiser, publisher], [limited, open], [people]);
  rogue = await createSimPlatform();
  const first = await fresh();
  const loadedHead = await serve(first);
  const runHead = await run(first, publisher, "limited");
  afterFirstRun = first.audit(1).entries;
  heads = { advertiser: loadedHead, publisher: await run(first, publisher, "limited") };
  expect(runHead.seq).toBeLessThan(heads.publisher.seq);
  fullLog = first.audit(1).entries;
});
afterAll(() => {
  for (const e of opened) e.close();
});

describe("restore verifies the log before it counts anything", () => {
  it("an honest restore: maxRuns continues once the requester shows the head it saw", async () => {
    const e = await restarted(fullLog);
    await serve(e, heads.advertiser);
    // The log verifies for any party, the new instance through its own evidence.
    const verified = await verifyAuditLog(e.audit(1).entries, await testPolicy(), {
      heads: [heads.advertiser, heads.publisher],
    });
    expect(verified.entries.filter((x) => x.kind === "enclave-started")).toHaveLength(2);
    // Two of three runs are spent: one is left, for the publisher that shows its head.
    await run(e, publisher, "limited", heads.publisher);
    await expect(run(e, publisher, "limited", heads.publisher)).rejects.toEqual(code("ERR_MAX_RUNS"));
  });

  it("refuses a reordered log at the first entry out of place, and changes nothing", async () => {
    const copy = [...fullLog];
    [copy[3], copy[4]] = [copy[4]!, copy[3]!];
    await refusedAt(copy, 4, /sequence gap or reordering/);
  });

  it("refuses a forged entry (a run count or budget edited) at its seq", async () => {
    const i = fullLog.length - 1;
    const forged = edited(fullLog[i]!, (x) => ((x.data as { query: string }).query = "unlimited"));
    await refusedAt([...fullLog.slice(0, i), forged], i + 1, /signature does not verify/);
  });

  it("refuses a log re-signed by a key whose evidence this enclave does not accept", async () => {
    // The same entries, re-signed by an instance on a simulated platform this enclave does not run on.
    const attacker = await makeInstance(rogue);
    const started = await AuditLog.start(attacker);
    await refusedAt([started.started.jws], 1, /instance evidence refused/);
    // An instance on this platform but with another image (launch measurement).
    const otherImage = await makeInstance(await testPlatform(), new Uint8Array(48).fill(1));
    const other = await AuditLog.start({ ...otherImage, head: { seq: 0, hash: "0".repeat(64) } });
    await refusedAt([other.started.jws], 1, /instance evidence refused/);
    // An instance's genuine evidence, obtained for another position, re-used (and re-signed) here.
    const insider = await makeInstance(await testPlatform());
    const genuine = await AuditLog.start({ ...insider, head: { seq: 2, hash: "ab".repeat(32) } });
    const moved = await AuditLog.start({
      ...insider,
      attest: async () => ({ ...genuine.evidence }),
      head: { seq: fullLog.length, hash: (await verifyAuditLog(fullLog, await testPolicy())).head.hash },
    });
    await refusedAt([...fullLog, moved.started.jws], fullLog.length + 1, /instance evidence refused/);
  });

  it("refuses an instance of another platform than its own", async () => {
    const nitro = await fresh({ provider: await simProvider("nitro") });
    await expect(nitro.restoreAudit({ entries: fullLog })).rejects.toEqual(
      expect.objectContaining({ code: "ERR_AUDIT_RESTORE", seq: 1 }),
    );
    // A Nitro chain restores on Nitro: its instances' documents verify under the shared root.
    const next = await fresh({ provider: await simProvider("nitro") });
    const { head } = await next.restoreAudit({ entries: nitro.audit(1).entries });
    expect(head.seq).toBe(2);
  });
});

describe("a truncated log verifies, so the parties' heads decide", () => {
  it("a party whose head the log lacks is refused, on its grant and its query", async () => {
    const e = await restarted(afterFirstRun);
    await admit(e, contract, [advertiser, publisher]);
    await expect(run(e, publisher, "limited", heads.publisher)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    await expect(run(e, publisher, "unlimited", heads.publisher)).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
    await expect(
      serveCsv(e, contract, advertiser, people.id, csv, { toEnclave: true, auditHead: heads.publisher }),
    ).rejects.toEqual(code("ERR_AUDIT_ROLLBACK"));
  });

  it("without a head of the restored part, run-limited queries wait; others run", async () => {
    const e = await restarted(afterFirstRun);
    const ownerHead = await serve(e); // the owner forgot its head
    await run(e, publisher, "unlimited"); // no maxRuns, no budget: nothing to protect
    const refusal = run(e, publisher, "limited");
    await expect(refusal).rejects.toEqual(code("ERR_AUDIT_HEAD_REQUIRED"));
    expect(errorReply(await refusal.catch((x: unknown) => x)).status).toBe(409);
    // A head of this instance's own part shows nothing about the restored one.
    expect(ownerHead.seq).toBeGreaterThan(afterFirstRun.length);
    await expect(run(e, publisher, "limited", ownerHead)).rejects.toEqual(code("ERR_AUDIT_HEAD_REQUIRED"));
    // Once every other party (the advertiser) has shown a head of the restored part, it runs.
    await run(e, advertiser, "unlimited", heads.advertiser);
    await run(e, publisher, "limited");
  });

  it("the requester's own head of the restored part is enough", async () => {
    const e = await restarted(fullLog);
    await serve(e);
    await run(e, publisher, "limited", heads.publisher);
  });

  it("a fresh start (nothing restored) asks for nothing", async () => {
    const e = await fresh();
    await serve(e);
    await run(e, publisher, "limited");
  });
});
