import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { uploadFile } from "../../client/node/upload.js";
import {
  attest,
  auditVerify,
  checkAttestation,
  fetchResult,
  grant,
  HostClient,
  MemoryStateStore,
  paramsDigest,
  query,
  runEntryBinds,
} from "../../client/sdk/index.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditEntry } from "../../protocol/audit/entry.js";
import { FakeHost, RESULT_CSV } from "./fake-host.js";
import { makeContract, makeParty, simPolicy, type TestParty } from "./setup.js";

let platform: SimPlatform;
let rogue: SimPlatform;
let alice: TestParty;
let bob: TestParty;
let dir: string;
let csv: string;

beforeAll(async () => {
  [platform, rogue, alice, bob] = await Promise.all([
    createSimPlatform(),
    createSimPlatform(),
    makeParty("alice"),
    makeParty("bob"),
  ]);
  dir = await mkdtemp(join(tmpdir(), "cleanroom-sdk-"));
  csv = join(dir, "purchases.csv");
  await writeFile(csv, `email_sha256,amount\n${`${"a".repeat(64)},10\n`.repeat(5000)}`);
});

afterAll(() => rm(dir, { recursive: true, force: true }));

let host: FakeHost;
beforeEach(async () => {
  host = await FakeHost.start(platform, makeContract(alice, bob));
  return () => host.close();
});

const client = (party: TestParty, store = new MemoryStateStore()) => host.openClient(party, { store });

const sent = () => host.requests.filter((r) => !r.startsWith("GET /evidence"));

describe("attest", () => {
  it("verifies simulated evidence bound to the enclave keys, contract and nonce", async () => {
    const a = await attest(new HostClient(host.url), {
      policy: simPolicy(platform),
      contractDigest: (await client(alice)).contractDigest,
    });
    expect(a.result.verified).toBe(true);
    expect(a.keys).toEqual(host.enclave.keys);
  });

  it("refuses evidence under a root it was not told to trust", async () => {
    const r = await checkAttestation(new HostClient(host.url), {
      policy: { measurements: simPolicy(platform).measurements! },
      contractDigest: (await client(alice)).contractDigest,
    });
    expect(r.result.verified).toBe(false);
    expect(r.keys).toBeUndefined();
  });

  it("refuses an enclave holding another contract", async () => {
    await expect(
      attest(new HostClient(host.url), { policy: simPolicy(platform), contractDigest: "ab".repeat(32) }),
    ).rejects.toMatchObject({ code: "ERR_ATTESTATION_REFUSED" });
  });
});

describe("nothing is sent when attestation fails", () => {
  beforeEach(() => {
    host.evidencePlatform = rogue;
  });

  it("upload", async () => {
    await expect(uploadFile(await client(alice), csv)).rejects.toMatchObject({
      code: "ERR_ATTESTATION_REFUSED",
    });
    expect(sent()).toEqual([]);
  });

  it("grant", async () => {
    const c = await client(alice);
    await expect(
      grant(c, { dataset: "purchases", ciphertextDigest: "0".repeat(64), fileKey: new Uint8Array(16) }),
    ).rejects.toMatchObject({ code: "ERR_ATTESTATION_REFUSED" });
    expect(sent()).toEqual([]);
  });

  it("query", async () => {
    await expect(
      query(await client(alice), { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({ code: "ERR_ATTESTATION_REFUSED" });
    expect(sent()).toEqual([]);
  });
});

describe("upload → grant → query → audit", () => {
  it("round-trips through the fake enclave and verifies every answer", async () => {
    const store = new MemoryStateStore();
    const c = await client(alice, store);
    const up = await uploadFile(c, csv);
    expect(host.blobs.has(up.digest)).toBe(true);
    // Encrypted to the party's own recipient, so the party (not only the enclave) can open it.
    expect(
      new TextDecoder().decode(await decryptBytes(host.blobs.get(up.digest)!, alice.keys.ageIdentity)),
    ).toBe(await readFile(csv, "utf8"));
    // The file key comes from the header kept at upload; the fake checks it opens the file.
    const g = await grant(c, { dataset: "purchases", ciphertextDigest: up.digest });
    expect(g.rows).toBe(3);
    const q = await query(c, { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" });
    expect(new TextDecoder().decode(q.data)).toBe(RESULT_CSV);
    // The row count comes from the receipt; the signed answer the host relays has none, and
    // nothing anywhere counts the groups held back.
    expect(q.receipt).toMatchObject({ party: "alice", requester: "alice", rows: 2 });
    expect(q.receipt).not.toHaveProperty("groupsSuppressed");
    expect(q.response).not.toHaveProperty("rows");
    expect(q.response).not.toHaveProperty("groupsSuppressed");
    expect(q.rows).toEqual([
      ["campaign", "buyers"],
      ["spring", "120"],
      ["summer", "75"],
    ]);
    expect(await c.state.highestHead()).toEqual(host.head);
    const log = await auditVerify(c);
    expect(log.head).toEqual(host.head);
    expect(log.entries.map((e) => e.kind)).toEqual([
      "enclave-started",
      "contract-accepted",
      "grant",
      "dataset-loaded",
      "query-run",
    ]);
    // Offline, the verified entry binds the file this party received and the parameters it sent.
    const run = log.entries.at(-1) as AuditEntry<"query-run">;
    expect(
      await runEntryBinds(run, {
        party: "alice",
        ciphertext: q.ciphertext!,
        params: { min: 1 },
        paramsKey: q.receipt.paramsKey,
      }),
    ).toBe(true);
  });

  it("a runner that is not a recipient gets the signed answer but no result", async () => {
    const q = await query(await client(bob), {
      queryId: "buyers-by-campaign",
      params: { min: 1 },
      format: "csv",
    });
    expect(q.data).toBeUndefined();
    expect(q.response.requester).toBe("bob");
    // Its receipt holds the parameter key (so it checks the digest of its own parameters), no counts.
    expect(q.receipt.party).toBe("bob");
    expect(q.receipt).not.toHaveProperty("rows");
  });

  it("a recipient fetches a run another party requested and checks it against the signed answer", async () => {
    const q = await query(await client(bob), {
      queryId: "buyers-by-campaign",
      params: { min: 3 },
      format: "csv",
    });
    const r = await fetchResult(await client(alice), q.id);
    expect(new TextDecoder().decode(r.data)).toBe(RESULT_CSV);
    expect(r.receipt).toMatchObject({ party: "alice", requester: "bob", rows: 2 });
    // Told the parameters, the recipient can check them too; a guess does not match.
    expect(await paramsDigest(r.receipt.paramsKey, { min: 3 })).toBe(r.response.paramsDigest);
    expect(await paramsDigest(r.receipt.paramsKey, { min: 4 })).not.toBe(r.response.paramsDigest);
    // A result file the host made up (encrypted to alice's public recipient) is refused.
    host.corruptResult = true;
    const bad = await query(await client(bob), {
      queryId: "buyers-by-campaign",
      params: { min: 3 },
      format: "csv",
    });
    await expect(fetchResult(await client(alice), bad.id)).rejects.toMatchObject({
      code: "ERR_RESULT_DIGEST",
    });
  });
});

describe("enclave key changes", () => {
  it("re-attests when the cached enclave keys are stale, then succeeds", async () => {
    const store = new MemoryStateStore();
    await query(await client(alice, store), {
      queryId: "buyers-by-campaign",
      params: { min: 1 },
      format: "csv",
    });
    await host.restartEnclave();
    const c = await client(alice, store);
    const evidenceBefore = host.requests.filter((r) => r.startsWith("GET /evidence")).length;
    const q = await query(c, { queryId: "buyers-by-campaign", params: { min: 2 }, format: "csv" });
    expect(new TextDecoder().decode(q.data)).toBe(RESULT_CSV);
    expect(host.requests.filter((r) => r.startsWith("GET /evidence")).length).toBe(evidenceBefore + 1);
    expect((await c.attestation()).keys).toEqual(host.enclave.keys);
    // Each instance is trusted through the evidence its first entry carries: the log verifies.
    expect((await auditVerify(c)).head).toEqual(host.head);
  });

  it("refuses a response signed by a key no attestation vouches for", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    host.rogueKey = pair.privateKey;
    await expect(
      query(await client(alice), { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({ code: "ERR_RESPONSE_SIGNATURE" });
  });

  it("an audit log trusts instances through their own evidence, and only under this party's policy", async () => {
    await host.restartEnclave();
    // A party that never attested either instance verifies both through the log itself.
    expect((await auditVerify(await client(alice, new MemoryStateStore()))).head).toEqual(host.head);
    // An instance whose evidence comes from a platform this party does not trust is refused there.
    await host.restartEnclave(rogue);
    await expect(auditVerify(await client(alice, new MemoryStateStore()))).rejects.toMatchObject({
      code: "ERR_AUDIT",
      seq: host.entries.length,
    });
  });
});

describe("a host that rolls back or tampers is caught", () => {
  it("refuses a head behind the highest seen", async () => {
    const c = await client(alice);
    const stale = host.head;
    await query(c, { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" });
    host.headOverride = stale;
    await expect(
      query(c, { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({ code: "ERR_AUDIT" });
  });

  it("refuses a genuine response to another request", async () => {
    host.wrongInReplyTo = true;
    await expect(
      query(await client(alice), { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({ code: "ERR_RESPONSE_SIGNATURE", message: "response answers another request" });
  });

  it("refuses a result that does not match the signed digest", async () => {
    host.corruptResult = true;
    await expect(
      query(await client(alice), { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({ code: "ERR_RESULT_DIGEST" });
  });

  it("refuses receipts whose key does not reproduce the signed parameter digest", async () => {
    host.wrongParamsKey = true;
    await expect(
      query(await client(alice), { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" }),
    ).rejects.toMatchObject({
      code: "ERR_RESULT_DIGEST",
      message: "parameters do not match the signed digest",
    });
  });

  it("refuses an audit log truncated below the head seen", async () => {
    const c = await client(alice);
    await query(c, { queryId: "buyers-by-campaign", params: { min: 1 }, format: "csv" });
    host.entries.pop();
    await expect(auditVerify(c)).rejects.toMatchObject({ code: "ERR_AUDIT" });
  });

  it("carries the server's error code in a typed HostError", async () => {
    await expect(new HostClient(host.url).getJson("/nowhere")).rejects.toMatchObject({
      code: "ERR_HOST",
      status: 404,
      serverCode: "ERR_NOT_FOUND",
    });
  });
});
