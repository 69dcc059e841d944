import fc from "fast-check";
import { base64url, calculateJwkThumbprint } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { createSimPlatform, type SimPlatform } from "../../attestation/sim/platform.js";
import { type AuditEntry, type AuditHead, GENESIS_HASH, isAuditEntry } from "../../protocol/audit/entry.js";
import { AuditError } from "../../protocol/audit/errors.js";
import { checkHeadNotRolledBack } from "../../protocol/audit/head.js";
import { AuditLog } from "../../protocol/audit/log.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import { signCompact } from "../../protocol/jose/lib/jws.js";
import { makeInstance, type TestInstance } from "./instance.js";

const hex = (n: number) => n.toString(16).padStart(64, "0");

let platform: SimPlatform;
let rogue: SimPlatform;
let policy: EvidencePolicy;
let k1: TestInstance;
let k2: TestInstance;
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
  [platform, rogue] = await Promise.all([createSimPlatform(), createSimPlatform()]);
  policy = {
    measurements: [toHex(platform.measurement)],
    trustedSimRoots: [new Uint8Array(platform.amd.ark.rawData)],
  };
  k1 = await makeInstance(platform);
  k2 = await makeInstance(platform);
  log = [];
  heads = [{ seq: 0, hash: GENESIS_HASH }];
  const first = await AuditLog.start(k1);
  log.push(first.started.jws);
  heads.push(first.started.head);
  for (let i = 1; i < 60; i++) {
    const r = await appendRun(first.log, i);
    log.push(r.jws);
    heads.push(r.head);
  }
  const second = await AuditLog.start({ ...k2, head: first.log.head });
  log.push(second.started.jws);
  heads.push(second.started.head);
  // Concurrent appends must still come out as a consistent chain.
  const rest = await Promise.all(Array.from({ length: 39 }, (_, j) => appendRun(second.log, 61 + j)));
  for (const r of rest) {
    log.push(r.jws);
    heads.push(r.head);
  }
});

async function failure(entries: string[], p = policy, seen?: AuditHead): Promise<AuditError> {
  const e = await verifyAuditLog(entries, p, seen ? { heads: [seen] } : {}).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AuditError);
  expect((e as AuditError).code).toBe("ERR_AUDIT");
  return e as AuditError;
}

const failingSeq = async (entries: string[], p = policy, seen?: AuditHead) =>
  (await failure(entries, p, seen)).seq;

function payloadOf(jws: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(base64url.decode(jws.split(".")[1]!)));
}

function tamperPayload(jws: string, edit: (entry: Record<string, unknown>) => void): string {
  const [h, , s] = jws.split(".") as [string, string, string];
  const entry = payloadOf(jws);
  edit(entry);
  return `${h}.${base64url.encode(canonicalBytes(entry))}.${s}`;
}

/** `entry` signed by `by` as the audit log signs, under the kid `kid` (default: `by`'s own). */
async function signEntry(entry: Record<string, unknown>, by: TestInstance, kid?: string): Promise<string> {
  return signCompact(
    canonicalBytes(entry),
    {
      alg: "ES256",
      typ: "cleanroom-audit+jws",
      kid: kid ?? (await calculateJwkThumbprint(by.keys.signingKey, "sha256")),
    },
    by.signingKey,
  );
}

describe("audit log", () => {
  it("verifies 100 entries across an enclave restart, each instance through its own evidence", async () => {
    expect(log).toHaveLength(100);
    const out = await verifyAuditLog(log, policy, { heads: [heads[42]!, heads[100]!] });
    expect(out.head).toEqual(heads[100]);
    expect(out.hashes).toEqual(heads.map((h) => h.hash));
    expect(out.entries.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(out.entries[0]!.kind).toBe("enclave-started");
    expect(out.entries[60]!.kind).toBe("enclave-started");
    expect(out.entries[0]!.prev).toBe(GENESIS_HASH);
    const started = out.entries[0] as AuditEntry<"enclave-started">;
    expect(started.data.signingKey).toBe(await calculateJwkThumbprint(k1.keys.signingKey, "sha256"));
    expect(started.data.keys).toEqual(k1.keys);
    // The SEV-SNP evidence travels without its ARK: verifiers bring their own roots.
    expect(Object.keys(started.data.evidence.certificates ?? {}).sort()).toEqual(["ask", "vcek"]);
    expect((await verifyAuditLog([], policy)).head).toEqual({ seq: 0, hash: GENESIS_HASH });
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
    expect(await failingSeq(log.slice(0, 70), policy, heads[80])).toBe(80);
  });

  it("refuses a log that differs from a head seen before", async () => {
    expect(await failingSeq(log, policy, { seq: 80, hash: hex(1) })).toBe(80);
  });

  it("refuses an instance whose evidence the verifier's policy does not accept", async () => {
    // Another image (measurement), or a simulated root this verifier was not told to trust.
    const otherImage = { ...policy, measurements: ["ab".repeat(48)] };
    expect((await failure(log, otherImage)).message).toMatch(
      /^audit entry 1: instance evidence refused \(ERR_/,
    );
    expect(await failingSeq(log, { measurements: policy.measurements! })).toBe(1);
    // A second instance on another (simulated) platform: refused at its own first entry.
    const stranger = await makeInstance(rogue);
    const head = heads[60]!;
    const { started } = await AuditLog.start({ ...stranger, head });
    expect(await failingSeq([...log.slice(0, 60), started.jws])).toBe(61);
    // The same with an image other than the accepted one, on the trusted platform.
    const otherMeasurement = await makeInstance(platform, new Uint8Array(48).fill(7));
    const other = await AuditLog.start({ ...otherMeasurement, head });
    expect(await failingSeq([...log.slice(0, 60), other.started.jws])).toBe(61);
    // A restarted enclave verifies with its own platform: an instance on another one is refused.
    await expect(verifyAuditLog(log, policy, { platform: "nitro" })).rejects.toMatchObject({ seq: 1 });
  });

  it("refuses evidence moved to another chain position, even re-signed by its own key", async () => {
    // The second instance's genuine evidence (nonce = the hash of entry 60) at seq 62.
    const original = payloadOf(log[60]!);
    const moved = { ...original, seq: 62, prev: heads[61]!.hash };
    const jws = await signEntry(moved, k2);
    const e = await failure([...log.slice(0, 61), jws]);
    expect(e.seq).toBe(62);
    expect(e.message).toMatch(/instance evidence refused/);
    // And to the start of a chain of its own.
    const alone = await signEntry({ ...original, seq: 1, prev: GENESIS_HASH }, k2);
    expect(await failingSeq([alone])).toBe(1);
  });

  it("refuses an instance whose keys do not match its digest, thumbprint or signature", async () => {
    const original = payloadOf(log[0]!);
    const data = original.data as AuditEntry<"enclave-started">["data"];
    const wrongDigest = await signEntry({ ...original, data: { ...data, keysDigest: hex(9) } }, k1);
    expect((await failure([wrongDigest])).message).toMatch(/keys digest/);
    // Keys of another instance under this instance's thumbprint and signature.
    const swapped = await signEntry({ ...original, data: { ...data, keys: k2.keys } }, k1);
    expect((await failure([swapped])).message).toMatch(/not signed by the key it introduces/);
    // Signed by another key under the introduced key's kid.
    const forged = await signEntry(original, k2, data.signingKey);
    expect((await failure([forged])).message).toMatch(/signature does not verify/);
  });

  it("refuses entries re-signed by a key whose instance the log never introduced", async () => {
    // A forged continuation: a genuine entry re-chained after the restart, signed with the old key.
    const kid1 = await calculateJwkThumbprint(k1.keys.signingKey, "sha256");
    const entry = {
      seq: 62,
      prev: heads[61]!.hash,
      time: new Date().toISOString(),
      kind: "contract-accepted",
      data: { contract: hex(0) },
    };
    expect(await failingSeq([...log.slice(0, 61), await signEntry(entry, k1)])).toBe(62);
    // A log not opened by an enclave-started entry.
    const orphan = await signEntry({ ...entry, seq: 1, prev: GENESIS_HASH }, k1, kid1);
    expect(await failingSeq([orphan])).toBe(1);
  });

  it("refuses a properly signed entry that does not link to its predecessor", async () => {
    const entry = {
      seq: 2,
      prev: hex(5),
      time: new Date().toISOString(),
      kind: "contract-accepted",
      data: { contract: hex(0) },
    };
    expect(await failingSeq([log[0]!, await signEntry(entry, k1)])).toBe(2);
  });

  it("refuses a non-canonical payload even when properly signed", async () => {
    const kid1 = await calculateJwkThumbprint(k1.keys.signingKey, "sha256");
    const pretty = new TextEncoder().encode(JSON.stringify(payloadOf(log[0]!), null, 1));
    const jws = await signCompact(
      pretty,
      { alg: "ES256", typ: "cleanroom-audit+jws", kid: kid1 },
      k1.signingKey,
    );
    expect(await failingSeq([jws])).toBe(1);
  });

  it("reads an enclave-started entry only in its exact form", () => {
    const entry = payloadOf(log[0]!);
    const data = entry.data as Record<string, unknown>;
    const evidence = data.evidence as Record<string, unknown>;
    const keys = data.keys as { signingKey: Record<string, unknown>; ageRecipient: string };
    expect(isAuditEntry(entry)).toBe(true);
    const variants: Record<string, unknown>[] = [
      { ...data, extra: 1 },
      { signingKey: data.signingKey, keysDigest: data.keysDigest },
      { ...data, evidence: { ...evidence, nonce: hex(1) } },
      { ...data, evidence: { ...evidence, platform: "tdx" } },
      { ...data, evidence: { ...evidence, evidence: "not base64!" } },
      { ...data, evidence: { ...evidence, evidence: "A".repeat(32 * 1024) } },
      { ...data, evidence: { ...evidence, certificates: {} } },
      { ...data, evidence: { ...evidence, certificates: { vlek: "AAAA" } } },
      { ...data, keys: { ...keys, extra: 1 } },
      { ...data, keys: { ...keys, signingKey: { ...keys.signingKey, d: "x".repeat(43) } } },
      { ...data, keys: { ...keys, signingKey: { ...keys.signingKey, crv: "P-384" } } },
      { ...data, keys: { ...keys, ageRecipient: "age1nope" } },
    ];
    for (const d of variants)
      expect(isAuditEntry({ ...entry, data: d }), JSON.stringify(Object.keys(d))).toBe(false);
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
      { numRuns: 40 },
    );
  });

  it("property: dropping, duplicating or truncating at a random position is caught", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 98 }), fc.integer({ min: 0, max: 2 }), async (i, op) => {
        if (op === 0) expect(await failingSeq(log.filter((_, j) => j !== i))).toBe(i + 1);
        if (op === 1)
          expect(await failingSeq([...log.slice(0, i + 1), log[i]!, ...log.slice(i + 1)])).toBe(i + 2);
        if (op === 2) expect(await failingSeq(log.slice(0, i), policy, heads[i + 1])).toBe(i + 1);
      }),
      { numRuns: 40 },
    );
  });

  it("start binds the evidence to the new entry's position; refuses a malformed head", async () => {
    const seen: Uint8Array[] = [];
    const recording = {
      ...k1,
      attest: (rd: Uint8Array, nonce: Uint8Array) => {
        seen.push(nonce);
        return k1.attest(rd, nonce);
      },
    };
    await AuditLog.start({ ...recording, head: heads[7]! });
    expect(toHex(seen[0]!)).toBe(heads[7]!.hash);
    await expect(AuditLog.start({ ...k1, head: { seq: -1, hash: GENESIS_HASH } })).rejects.toThrow(
      UsageError,
    );
    const { log: l } = await AuditLog.start(k1);
    await expect(
      l.append("dataset-loaded", { dataset: "purchases", ciphertextDigest: hex(1), rows: -1 }),
    ).rejects.toThrow(UsageError);
    expect(l.head.seq).toBe(1);
  });

  it("refuses a query-run whose epsilon and budget debit disagree", async () => {
    const { log: l } = await AuditLog.start(k1);
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
