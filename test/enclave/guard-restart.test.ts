/**
 * The differencing guard across a restart. The attack: an advertiser uploads a group, runs the
 * guarded query, then (in a new instance, after a restart) uploads the same group plus the target
 * and runs it again; the two answers differ by the target. With the guard's history sealed to the
 * host and handed back with the restored chain, the restarted instance suppresses the second
 * answer exactly as the first instance would have, while a group that differs by k or more is
 * released (the query is not frozen). A history the host withholds or alters leaves the query
 * releasing nothing more (fails closed); one restored from a chain that lost its run is refused
 * through the parties' heads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Enclave, RequestReply } from "../../enclave/runtime.js";
import type { AuditEntry, AuditHead } from "../../protocol/audit/entry.js";
import type { Contract } from "../../protocol/contract/types.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { hashedEmail, K } from "../sql/usecases.js";
import {
  admit,
  contractFor,
  makeParties,
  openResult,
  type Party,
  people,
  peopleByGroup,
  sealed,
  serveCsv,
  startEnclave,
} from "./world.js";

const byGroup = peopleByGroup("by-group");

/** Group "a" of people `from..to-1`, plus the target (person 999) when asked. */
function csvOf(from: number, to: number, target = false): string {
  const rows = ["user_id,grp"];
  for (let i = from; i < to; i++) rows.push(`${hashedEmail(i)},a`);
  if (target) rows.push(`${hashedEmail(999)},a`);
  return `${rows.join("\n")}\n`;
}

const opened: Enclave[] = [];
let advertiser: Party;
let publisher: Party;
let contract: Contract;

beforeAll(async () => {
  ({ advertiser, publisher } = await makeParties());
  contract = contractFor([advertiser, publisher], [byGroup], [people]);
});
afterAll(() => {
  for (const e of opened) e.close();
});

async function fresh(): Promise<Enclave> {
  const e = await startEnclave();
  opened.push(e);
  return e;
}

async function headOf(enclave: Enclave, response: string): Promise<AuditHead> {
  return (await verifyResponse<{ head: AuditHead }>(response, enclave.keys.publicKeys.signingKey)).body.head;
}

async function run(
  enclave: Enclave,
  auditHead?: AuditHead,
): Promise<{ reply: RequestReply; rows: unknown[][] }> {
  const reply = await enclave.handleRequest(
    await sealed(enclave, contract, advertiser, "query", {
      queryId: byGroup.id,
      params: {},
      resultFormat: "json",
      ...(auditHead ? { auditHead } : {}),
    }),
  );
  const rows = (JSON.parse(await openResult(advertiser, reply.results!.advertiser!)) as { rows: unknown[][] })
    .rows;
  return { reply, rows };
}

/** The first instance: group "a" without the target, released; its log, head and sealed history. */
async function firstInstance() {
  const first = await fresh();
  await admit(first, contract, [advertiser, publisher]);
  await serveCsv(first, contract, advertiser, people.id, csvOf(0, 2 * K), { toEnclave: true });
  const { reply, rows } = await run(first);
  expect(rows).toEqual([["a", String(2 * K)]]);
  expect(reply.sealedHistory).toEqual(expect.any(String));
  const log = first.audit(1);
  return { log, head: await headOf(first, reply.response), history: reply.sealedHistory! };
}

/** A restarted instance given the chain and `guard` histories, serving `csv` (the owner presents `head`). */
async function restarted(entries: string[], guard: Record<string, string>, csv: string, head: AuditHead) {
  const second = await fresh();
  await second.restoreAudit({ entries, guard });
  await admit(second, contract, [advertiser, publisher]);
  await serveCsv(second, contract, advertiser, people.id, csv, { toEnclave: true, auditHead: head });
  return second;
}

describe("the differencing guard across a restart", () => {
  it("the sealed history the host hands back guards the next run: the target's difference is suppressed, a k-sized one released", async () => {
    const { log, head, history } = await firstInstance();
    const entry = log.entries
      .map((jws) => JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString()) as AuditEntry)
      .find((e): e is AuditEntry<"query-run"> => e.kind === "query-run");
    // The signed entry names the history by digest; the host keeps it opaque.
    expect(entry?.data.guard).toMatch(/^[0-9a-f]{64}$/);
    const guard = { whatever: history };

    // Same group plus the target: differs by one person from what was released. Suppressed.
    const withTarget = await restarted(log.entries, guard, csvOf(0, 2 * K, true), head);
    expect((await run(withTarget)).rows).toEqual([]);

    // A group that differs by k people is released: the history is continued, not frozen.
    const moved = await restarted(log.entries, guard, csvOf(0, 3 * K), head);
    expect((await run(moved)).rows).toEqual([["a", String(3 * K)]]);
  });

  it("without the history, or with one altered by the host, the query releases nothing more (fails closed)", async () => {
    const { log, head, history } = await firstInstance();
    const withheld = await restarted(log.entries, {}, csvOf(0, 3 * K), head);
    expect((await run(withheld)).rows).toEqual([]);
    const bytes = Buffer.from(history, "base64");
    bytes[bytes.length - 1]! ^= 1;
    const altered = await restarted(log.entries, { x: bytes.toString("base64") }, csvOf(0, 3 * K), head);
    expect((await run(altered)).rows).toEqual([]);
  });

  it("a truncated chain that drops the run (and its history) is caught by the owner's head", async () => {
    const { log, head, history } = await firstInstance();
    const truncated = log.entries.slice(0, -1);
    const second = await fresh();
    await second.restoreAudit({ entries: truncated, guard: { x: history } });
    await admit(second, contract, [advertiser, publisher]);
    // The owner presents the head it saw after the run: the truncated chain does not hold it.
    await expect(
      serveCsv(second, contract, advertiser, people.id, csvOf(0, 2 * K, true), {
        toEnclave: true,
        auditHead: head,
      }),
    ).rejects.toEqual(expect.objectContaining({ code: "ERR_AUDIT_ROLLBACK" }));
  });
});
