import fc from "fast-check";
import { base64url, calculateJwkThumbprint } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { type AuditHead, GENESIS_HASH } from "../../protocol/audit/entry.js";
import { AuditError } from "../../protocol/audit/errors.js";
import { checkHeadNotRolledBack } from "../../protocol/audit/head.js";
import { AuditLog } from "../../protocol/audit/log.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import { signCompact } from "../../protocol/jose/lib/jws.js";
import { makeParty, type TestParty } from "./fixtures.js";

const hex = (n: number) => n.toString(16).padStart(64, "0");
const KEYS_DIGEST = "11".repeat(32);

let k1: TestParty;
let k2: TestParty;
/** 100 entries: 60 by the first enclave instance, then a restart and 40 by the second. */
let log: string[];
let heads: AuditHead[];

async function appendRun(l: AuditLog, i: number) {
  switch (i % 4) {
    case 0:
      return l.append("contract-accepted", { contract: hex(i) });
    case 1:
      return l.append("grant", { dataset: "purchases", party: "acme", ciphertextDigest: hex(i) });
    case 2:
      return l.append("dataset-loaded", { dataset: "purchases", ciphertextDigest: hex(i), rows: i * 10 });
    default:
      return l.append("query-run", {
        query: "conversions-by-campaign",
        requester: "news",
        paramsDigest: hex(i),
        resultDigests: { news: hex(i + 1) },
        epsilon: 0.5,
        debits: [{ party: "news", micros: 500_000, total: ((i + 1) / 4) * 500_000 }],
      });
  }
}

beforeAll(async () => {
  k1 = await makeParty("enclave-1");
  k2 = await makeParty("enclave-2");
  log = [];
  heads = [{ seq: 0, hash: GENESIS_HASH }];
  const first = await AuditLog.start({
    signingKey: k1.privateKey,
    publicJwk: k1.publicJwk,
    keysDigest: KEYS_DIGEST,
  });
  log.push(first.started.jws);
  heads.push(first.started.head);
  for (let i = 1; i < 60; i++) {
    const r = await appendRun(first.log, i);
    log.push(r.jws);
    heads.push(r.head);
  }
  const second = await AuditLog.start({
    signingKey: k2.privateKey,
    publicJwk: k2.publicJwk,
    keysDigest: KEYS_DIGEST,
    head: first.log.head,
  });
  log.push(second.started.jws);
  heads.push(second.started.head);
  // Concurrent appends must still come out as a consistent chain.
  const rest = await Promise.all(Array.from({ length: 39 }, (_, j) => appendRun(second.log, 61 + j)));
  for (const r of rest) {
    log.push(r.jws);
    heads.push(r.head);
  }
});

const attested = () => [k1.publicJwk, k2.publicJwk];

async function failingSeq(entries: string[], keys = attested(), expectedHead?: AuditHead): Promise<number> {
  const e = await verifyAuditLog(entries, keys, expectedHead ? { expectedHead } : {}).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AuditError);
  expect((e as AuditError).code).toBe("ERR_AUDIT");
  return (e as AuditError).seq;
}

function tamperPayload(jws: string, edit: (entry: Record<string, unknown>) => void): string {
  const [h, p, s] = jws.split(".") as [string, string, string];
  const entry = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
  edit(entry);
  return `${h}.${base64url.encode(canonicalBytes(entry))}.${s}`;
}

describe("audit log", () => {
  it("verifies 100 entries across an enclave restart and returns the head", async () => {
    expect(log).toHaveLength(100);
    const out = await verifyAuditLog(log, attested(), { expectedHead: heads[42]! });
    expect(out.head).toEqual(heads[100]);
    expect(out.entries.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(out.entries[0]!.kind).toBe("enclave-started");
    expect(out.entries[60]!.kind).toBe("enclave-started");
    expect(out.entries[0]!.prev).toBe(GENESIS_HASH);
    const kid1 = await calculateJwkThumbprint(k1.publicJwk, "sha256");
    expect(out.entries[0]!.data).toEqual({ signingKey: kid1, keysDigest: KEYS_DIGEST });
    expect((await verifyAuditLog([], attested())).head).toEqual({ seq: 0, hash: GENESIS_HASH });
    expect((await verifyAuditLog(log, attested(), { expectedHead: heads[100]! })).head.seq).toBe(100);
  });

  it("refuses a modified entry at its seq", async () => {
    const copy = [...log];
    copy[30] = tamperPayload(copy[30]!, (e) => ((e.data as { rows: number }).rows = 1));
    expect(await failingSeq(copy)).toBe(31);
  });

  it("refuses a removed entry at the first missing seq", async () => {
    expect(await failingSeq(log.filter((_, i) => i !== 49))).toBe(50);
  });

  it("refuses reordered entries", async () => {
    const copy = [...log];
    [copy[10], copy[11]] = [copy[11]!, copy[10]!];
    expect(await failingSeq(copy)).toBe(11);
  });

  it("refuses a log truncated below a head seen before", async () => {
    expect(await failingSeq(log.slice(0, 70), attested(), heads[80])).toBe(80);
  });

  it("refuses a log that differs from a head seen before", async () => {
    expect(await failingSeq(log, attested(), { seq: 80, hash: hex(1) })).toBe(80);
  });

  it("refuses entries signed by a key without attestation", async () => {
    expect(await failingSeq(log, [k1.publicJwk])).toBe(61);
    expect(await failingSeq(log, [k2.publicJwk])).toBe(1);
  });

  it("refuses an old key writing after a restart, and a log not opened by enclave-started", async () => {
    // A genuine entry of the first enclave, re-chained after the second one started.
    const kid1 = await calculateJwkThumbprint(k1.publicJwk, "sha256");
    const head = (await verifyAuditLog(log.slice(0, 61), attested())).head;
    const entry = {
      seq: 62,
      prev: head.hash,
      time: new Date().toISOString(),
      kind: "contract-accepted",
      data: { contract: hex(0) },
    };
    const stale = await signCompact(
      canonicalBytes(entry),
      { alg: "ES256", typ: "cleanroom-audit+jws", kid: kid1 },
      k1.privateKey,
    );
    expect(await failingSeq([...log.slice(0, 61), stale])).toBe(62);
    // A log whose first entry is not an enclave-started entry.
    const first = { ...entry, seq: 1, prev: GENESIS_HASH };
    const orphan = await signCompact(
      canonicalBytes(first),
      { alg: "ES256", typ: "cleanroom-audit+jws", kid: kid1 },
      k1.privateKey,
    );
    expect(await failingSeq([orphan])).toBe(1);
  });

  it("refuses a properly signed entry that does not link to its predecessor", async () => {
    const kid1 = await calculateJwkThumbprint(k1.publicJwk, "sha256");
    const entry = {
      seq: 2,
      prev: hex(5),
      time: new Date().toISOString(),
      kind: "contract-accepted",
      data: { contract: hex(0) },
    };
    const jws = await signCompact(
      canonicalBytes(entry),
      { alg: "ES256", typ: "cleanroom-audit+jws", kid: kid1 },
      k1.privateKey,
    );
    expect(await failingSeq([log[0]!, jws])).toBe(2);
  });

  it("refuses a non-canonical payload even when properly signed", async () => {
    const kid1 = await calculateJwkThumbprint(k1.publicJwk, "sha256");
    const entry = {
      seq: 1,
      prev: GENESIS_HASH,
      time: new Date().toISOString(),
      kind: "enclave-started",
      data: { signingKey: kid1, keysDigest: KEYS_DIGEST },
    };
    const pretty = new TextEncoder().encode(JSON.stringify(entry, null, 1));
    const jws = await signCompact(
      pretty,
      { alg: "ES256", typ: "cleanroom-audit+jws", kid: kid1 },
      k1.privateKey,
    );
    expect(await failingSeq([jws])).toBe(1);
  });

  it("property: any single-entry tamper is refused at that entry's seq", async () => {
    const edits: ((e: Record<string, unknown>) => void)[] = [
      (e) => (e.time = "2000-01-01T00:00:00.000Z"),
      (e) => (e.prev = hex(7)),
      (e) => (e.seq = (e.seq as number) + 1),
      (e) => (e.kind = e.kind === "grant" ? "contract-accepted" : "grant"),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: edits.length - 1 }),
        async (i, k) => {
          const copy = [...log];
          copy[i] = tamperPayload(copy[i]!, edits[k]!);
          expect(await failingSeq(copy)).toBe(i + 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("property: dropping, duplicating or truncating at a random position is caught", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 98 }), fc.integer({ min: 0, max: 2 }), async (i, op) => {
        if (op === 0) expect(await failingSeq(log.filter((_, j) => j !== i))).toBe(i + 1);
        if (op === 1)
          expect(await failingSeq([...log.slice(0, i + 1), log[i]!, ...log.slice(i + 1)])).toBe(i + 2);
        if (op === 2) expect(await failingSeq(log.slice(0, i), attested(), heads[i + 1])).toBe(i + 1);
      }),
      { numRuns: 60 },
    );
  });

  it("start refuses a malformed previous head; append refuses data a verifier would reject", async () => {
    const base = { signingKey: k1.privateKey, publicJwk: k1.publicJwk, keysDigest: KEYS_DIGEST };
    await expect(AuditLog.start({ ...base, head: { seq: -1, hash: GENESIS_HASH } })).rejects.toThrow(
      UsageError,
    );
    await expect(AuditLog.start({ ...base, keysDigest: "nope" })).rejects.toThrow(UsageError);
    const { log: l } = await AuditLog.start(base);
    await expect(
      l.append("dataset-loaded", { dataset: "purchases", ciphertextDigest: hex(1), rows: -1 }),
    ).rejects.toThrow(UsageError);
    expect(l.head.seq).toBe(1);
  });

  it("refuses a query-run whose epsilon and ledger debit disagree", async () => {
    const { log: l } = await AuditLog.start({
      signingKey: k1.privateKey,
      publicJwk: k1.publicJwk,
      keysDigest: KEYS_DIGEST,
    });
    const run = {
      query: "q",
      requester: "news",
      paramsDigest: hex(1),
      resultDigests: { news: hex(2), acme: hex(3) },
      epsilon: 0.25,
    };
    const debit = { party: "news", micros: 250_000, total: 250_000 };
    // One debit per recipient: every recipient learns the answer.
    const second = { ...debit, party: "acme" };
    const refused = [
      undefined, // epsilon without a debit
      [], // no debit at all
      debit, // a single debit, not the list of them
      [{ ...debit, micros: 1 }], // a debit of another epsilon
      [{ ...debit, query: "other" }], // a field a debit does not have
      [debit, { ...second, party: "news" }], // one party charged twice
      [debit, { ...second, total: 0 }], // a total below the charge
      [{ ...debit, party: "Not A Party" }],
      [debit], // a recipient not charged
      [debit, { ...second, party: "bank" }], // a party charged that received nothing
    ];
    for (const debits of refused) {
      // biome-ignore lint/suspicious/noExplicitAny: malformed on purpose
      const data = (debits === undefined ? run : { ...run, debits }) as any;
      await expect(l.append("query-run", data)).rejects.toThrow(UsageError);
    }
    await expect(l.append("query-run", { ...run, debits: [debit, second] })).resolves.toMatchObject({
      head: { seq: 2 },
    });
  });
});

describe("checkHeadNotRolledBack", () => {
  it("accepts equal or later heads, refuses rollback and forks with the seen seq", () => {
    const seen = { seq: 10, hash: hex(10) };
    checkHeadNotRolledBack(seen, seen);
    checkHeadNotRolledBack(seen, { seq: 11, hash: hex(11) });
    expect(() => checkHeadNotRolledBack(seen, { seq: 9, hash: hex(9) })).toThrow(AuditError);
    try {
      checkHeadNotRolledBack(seen, { seq: 10, hash: hex(99) });
      expect.unreachable();
    } catch (e) {
      expect((e as AuditError).seq).toBe(10);
    }
  });
});
