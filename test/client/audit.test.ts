/**
 * A party's audit of the whole chain: the log must hold every head this party saw, those of
 * answers to other parties' runs it fetched included, and the signed head of every run the host
 * lists with a result for it. A host that cuts the log before such a run is caught even when the
 * party never fetched it; the log's own head is never taken as seen.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { auditVerify, fetchResult, MemoryStateStore, query } from "../../client/sdk/index.js";
import { FakeHost } from "./fake-host.js";
import { makeContract, makeParty, type TestParty } from "./setup.js";

let platform: SimPlatform;
let alice: TestParty;
let bob: TestParty;
let host: FakeHost;

beforeAll(async () => {
  [platform, alice, bob] = await Promise.all([createSimPlatform(), makeParty("alice"), makeParty("bob")]);
});
beforeEach(async () => {
  host = await FakeHost.start(platform, makeContract(alice, bob));
  return () => host.close();
});
afterAll(() => undefined);

const client = (party: TestParty, store = new MemoryStateStore()) => host.openClient(party, { store });

const run = async (party: TestParty, min: number) =>
  query(await client(party), { queryId: "buyers-by-campaign", params: { min }, format: "csv" });

describe("audit verify holds the log to every head the party can see", () => {
  it("a run the party was a recipient of, listed by the host, must be in the log", async () => {
    const a = await client(alice);
    await run(bob, 1);
    expect((await auditVerify(await client(alice), { listed: true })).head).toEqual(host.head);
    // The host cuts the run from its log but still lists its result: caught, at its head's seq.
    const cut = host.head.seq;
    host.entries.pop();
    expect((await auditVerify(a)).head.seq).toBe(cut - 1); // alice alone holds nothing later
    await expect(auditVerify(a, { listed: true })).rejects.toMatchObject({ code: "ERR_AUDIT", seq: cut });
  });

  it("a fetched answer's head stays with the party: a later cut log is refused", async () => {
    const store = new MemoryStateStore();
    const q = await run(bob, 2);
    await fetchResult(await client(alice, store), q.id);
    expect(await (await client(alice, store)).state.seenHeads()).toEqual([q.response.head]);
    host.entries.pop();
    await expect(auditVerify(await client(alice, store))).rejects.toMatchObject({
      code: "ERR_AUDIT",
      seq: q.response.head.seq,
    });
  });

  it("a named stored run must be signed by an instance of the log", async () => {
    const q = await run(bob, 3);
    const a = await client(alice);
    expect((await auditVerify(a, { results: [q.id] })).head).toEqual(host.head);
    const rogue = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    host.rogueKey = rogue.privateKey;
    const forged = await run(bob, 4).catch(() => undefined); // bob refuses it; the host keeps it
    expect(forged).toBeUndefined();
    const id = [...host.responses.keys()].at(-1)!;
    await expect(auditVerify(a, { results: [id] })).rejects.toMatchObject({ code: "ERR_RESPONSE_SIGNATURE" });
  });

  it("the log's own head is not taken as seen: a shorter log later still verifies", async () => {
    const a = await client(alice);
    await run(bob, 5);
    await auditVerify(a);
    host.entries.pop();
    expect((await auditVerify(a)).head.seq).toBe(host.entries.length);
  });
});

describe("heads in the party's state", () => {
  it("an own answer behind the highest head is a rollback; another party's older answer is not", async () => {
    const store = new MemoryStateStore();
    const first = await run(bob, 6);
    const a = await client(alice, store);
    await query(a, { queryId: "buyers-by-campaign", params: { min: 7 }, format: "csv" });
    const highest = await a.state.highestHead();
    expect(highest!.seq).toBeGreaterThan(first.response.head.seq);
    // Fetching an older run of bob's is fine and does not lower the head alice presents.
    await fetchResult(a, first.id);
    expect(await a.state.highestHead()).toEqual(highest);
    // A head of an answer to her own request lower than what she presented: refused.
    await expect(a.state.answeredHead(first.response.head)).rejects.toMatchObject({ code: "ERR_AUDIT" });
    // Another hash at a seq she holds: a fork, refused whatever the source.
    await expect(
      a.state.observeHead({ seq: first.response.head.seq, hash: "f".repeat(64) }),
    ).rejects.toMatchObject({
      code: "ERR_AUDIT",
    });
  });
});
