import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditContinuityError, BadIdError, EnclaveProtocolError, NotFoundError } from "../../host/errors.js";
import { AuditStore, auditEntryHead, ResultStore } from "../../host/store.js";
import { FakeEnclave } from "./fake-enclave.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "host-store-"));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** Audit JWS strings from the fake enclave's chain (no server needed). */
function chain(n: number): string[] {
  const fake = new FakeEnclave();
  for (let i = 0; i < n; i++) fake.appendAudit("event", { i });
  return fake.audit;
}

describe("AuditStore", () => {
  it("appends only entries that extend its head, in order, and survives a reopen", async () => {
    const entries = chain(5);
    const store = await AuditStore.open(dir);
    expect(store.head).toEqual({ seq: 0, hash: "0".repeat(64) });
    expect(await store.append([entries[0]!, entries[1]!])).toBe(2);
    // Entries already held are skipped; a gap is refused as a whole (entry 4 without 3).
    expect(await store.append([entries[1]!])).toBe(0);
    await expect(store.append([entries[1]!, entries[3]!])).rejects.toBeInstanceOf(AuditContinuityError);
    expect(store.head.seq).toBe(2);
    expect(await store.append(entries)).toBe(3);
    expect(store.list().entries).toEqual(entries);
    expect(store.list(4).entries).toEqual(entries.slice(3));
    const { seq, hash } = auditEntryHead(entries[4]!);
    expect(store.head).toEqual({ seq, hash });
    expect(store.holds({ seq: 3, hash: auditEntryHead(entries[2]!).hash })).toBe(true);
    expect(store.holds({ seq: 3, hash: hash })).toBe(false);

    const reopened = await AuditStore.open(dir);
    expect(reopened.list()).toEqual(store.list());
  });

  it("drops a torn final line on open", async () => {
    const entries = chain(2);
    const store = await AuditStore.open(dir);
    await store.append(entries);
    const file = join(dir, "audit.jsonl");
    const good = await readFile(file, "utf8");
    await appendFile(file, '{"seq":3,"jws":"ab');
    const reopened = await AuditStore.open(dir);
    expect(reopened.list().entries).toEqual(entries);
    expect(await readFile(file, "utf8")).toBe(good);
  });

  it("refuses entries that are not JWS with a seq and a prev", async () => {
    const store = await AuditStore.open(dir);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const noPrev = `a.${b64({ seq: 1 })}.c`;
    const badPrev = `a.${b64({ seq: 1, prev: "00" })}.c`;
    for (const bad of [
      "x",
      "a.b",
      `a.${b64({ seq: 0 })}.c`,
      `a.${b64({ seq: "1" })}.c`,
      "a.!!.c",
      noPrev,
      badPrev,
    ]) {
      await expect(store.append([bad]), bad).rejects.toBeInstanceOf(EnclaveProtocolError);
    }
  });
});

describe("AuditStore continuity", () => {
  it("refuses an entry whose prev is not the stored head's hash, or a different copy of a held one, and keeps nothing", async () => {
    const entries = chain(3);
    const store = await AuditStore.open(dir);
    await store.append(entries.slice(0, 2));
    // Entry 3 of another chain: right seq, wrong prev.
    const forked = new FakeEnclave();
    forked.appendAudit("event", { fork: true });
    forked.appendAudit("event", { fork: true });
    forked.appendAudit("event", { i: 2 });
    expect(auditEntryHead(forked.audit[2]!).seq).toBe(3);
    await expect(store.append([forked.audit[2]!])).rejects.toBeInstanceOf(AuditContinuityError);
    // A valid continuation followed by an entry that does not follow it: nothing of the batch is kept.
    await expect(store.append([entries[2]!, forked.audit[2]!])).rejects.toBeInstanceOf(AuditContinuityError);
    // Another entry at a seq the store already holds.
    await expect(store.append([forked.audit[1]!])).rejects.toBeInstanceOf(AuditContinuityError);
    expect(store.head.seq).toBe(2);
    expect((await AuditStore.open(dir)).list().entries).toEqual(entries.slice(0, 2));
    expect(await store.append([entries[2]!])).toBe(1);
  });

  it("refuses to open a stored log whose links are broken", async () => {
    const entries = chain(3);
    const file = join(dir, "audit.jsonl");
    const lines = [entries[0]!, entries[2]!].map((jws, i) => `${JSON.stringify({ seq: i + 1, jws })}\n`);
    await appendFile(file, lines.join(""));
    await expect(AuditStore.open(dir)).rejects.toBeInstanceOf(EnclaveProtocolError);
  });
});

describe("ResultStore", () => {
  it("keeps per-party files under a random id and refuses bad ids", async () => {
    const store = await ResultStore.open(dir);
    const saved = await store.save(
      "h.p.s",
      new Map([
        ["bob", new Uint8Array([1, 2])],
        ["alice", new Uint8Array([3])],
      ]),
    );
    expect(saved.recipients).toEqual(["alice", "bob"]);
    expect(await readFile(join(dir, "results", saved.id, "bob.age"))).toEqual(Buffer.from([1, 2]));
    expect((await store.meta(saved.id)).response).toBe("h.p.s");
    await expect(store.read(saved.id, "carol")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.read(saved.id, "../bob")).rejects.toBeInstanceOf(BadIdError);
    await expect(store.read("../../x", "bob")).rejects.toBeInstanceOf(BadIdError);
    await expect(store.save("h.p.s", new Map([["../evil", new Uint8Array()]]))).rejects.toBeInstanceOf(
      BadIdError,
    );
  });
});
