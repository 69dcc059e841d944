/** Query-run digests and receipts (protocol/audit/query-run.ts) and their place in the audit entry. */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { generateIdentity, identityToRecipient } from "../../protocol/age/keys.js";
import { encryptBytes } from "../../protocol/age/stream-node.js";
import { isAuditEntry } from "../../protocol/audit/entry.js";
import { AuditLog } from "../../protocol/audit/log.js";
import {
  ciphertextDigest,
  encodeReceipt,
  isDigestMap,
  newParamsKey,
  PARAMS_KEY_BYTES,
  paramsDigest,
  parseReceipt,
  type QueryReceipt,
  RECEIPT_BYTES,
  runEntryBinds,
} from "../../protocol/audit/query-run.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import { makeInstance } from "./instance.js";

const hex = (n: number) => n.toString(16).padStart(64, "0");
const receipt: QueryReceipt = {
  version: 1,
  query: "closed-loop",
  requester: "advertiser",
  party: "publisher",
  format: "csv",
  paramsKey: "ab".repeat(32),
  rows: 2,
};

describe("paramsDigest", () => {
  it("is HMAC-SHA256 under the run key over the canonical parameters", async () => {
    const key = newParamsKey();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const params = { z: 1.5, a: "x@example.com", m: true };
    const want = createHmac("sha256", Buffer.from(key, "hex")).update(canonicalBytes(params)).digest("hex");
    expect(await paramsDigest(key, params)).toBe(want);
    expect(await paramsDigest(Buffer.from(key, "hex"), { m: true, a: "x@example.com", z: 1.5 })).toBe(want);
    expect(await paramsDigest(newParamsKey(), params)).not.toBe(want);
  });

  it("refuses a key that is not 32 bytes", async () => {
    await expect(paramsDigest("ab".repeat(16), {})).rejects.toThrow(TypeError);
    expect(PARAMS_KEY_BYTES).toBe(32);
  });
});

describe("receipts", () => {
  it("round-trip at exactly RECEIPT_BYTES, whatever they hold", () => {
    const a = encodeReceipt(receipt);
    const { rows: _r, ...requesterOnly } = receipt;
    const b = encodeReceipt({ ...requesterOnly, party: "advertiser" });
    const c = encodeReceipt({ ...receipt, rows: 9_007_199_254_740_991 });
    for (const x of [a, b, c]) expect(x.length).toBe(RECEIPT_BYTES);
    expect(parseReceipt(a)).toEqual(receipt);
    expect(parseReceipt(b)).toEqual({ ...requesterOnly, party: "advertiser" });
    // Stock JSON readers take the padding as whitespace.
    expect(JSON.parse(new TextDecoder().decode(a))).toEqual(receipt);
  });

  it("encrypt to ciphertexts of one size", async () => {
    const recipient = await identityToRecipient(generateIdentity());
    const small = await encryptBytes(encodeReceipt({ ...receipt, rows: 0 }), [recipient]);
    const large = await encryptBytes(encodeReceipt({ ...receipt, rows: 9_007_199_254_740_991 }), [recipient]);
    expect(small.length).toBe(large.length);
  });

  it("refuse unknown fields (a count of suppressed groups among them), another length, and trailing bytes", () => {
    const bad = (v: unknown) => {
      const json = new TextEncoder().encode(JSON.stringify(v));
      const out = new Uint8Array(RECEIPT_BYTES).fill(0x20);
      out.set(json);
      return out;
    };
    expect(parseReceipt(bad(receipt))).toEqual(receipt);
    expect(parseReceipt(bad({ ...receipt, extra: 1 }))).toBeUndefined();
    // How many groups were held back is no receipt field: it would tell whether anyone matched.
    expect(parseReceipt(bad({ ...receipt, groupsSuppressed: 0 }))).toBeUndefined();
    expect(() =>
      // biome-ignore lint/suspicious/noExplicitAny: the former field, on purpose
      encodeReceipt({ ...receipt, groupsSuppressed: 1 } as any),
    ).toThrow(TypeError);
    expect(parseReceipt(bad({ ...receipt, rows: -1 }))).toBeUndefined();
    expect(parseReceipt(bad({ ...receipt, rows: 1.5 }))).toBeUndefined();
    expect(parseReceipt(bad({ ...receipt, rows: "2" }))).toBeUndefined();
    expect(parseReceipt(bad({ ...receipt, version: 2 }))).toBeUndefined();
    expect(parseReceipt(bad({ ...receipt, paramsKey: "AB".repeat(32) }))).toBeUndefined();
    expect(parseReceipt(bad(receipt).subarray(1))).toBeUndefined();
    const junk = bad(receipt);
    junk[RECEIPT_BYTES - 1] = 0x78;
    expect(parseReceipt(junk)).toBeUndefined();
    expect(() => encodeReceipt({ ...receipt, query: "Not An Id" })).toThrow(TypeError);
  });
});

describe("the query-run audit entry", () => {
  const entry = (data: Record<string, unknown>) => ({
    seq: 3,
    prev: hex(2),
    time: "2024-07-01T12:00:00.000Z",
    kind: "query-run",
    data,
  });
  const data = {
    query: "q",
    requester: "news",
    paramsDigest: hex(1),
    resultDigests: { news: hex(2) },
    epsilon: 0,
  };

  it("carries a digest per recipient and no count", () => {
    expect(isAuditEntry(entry(data))).toBe(true);
    expect(isAuditEntry(entry({ ...data, resultDigests: { news: hex(2), acme: hex(3) } }))).toBe(true);
    // The former fields are refused: an unsalted result digest, counts in the clear.
    const { resultDigests: _d, ...rest } = data;
    expect(isAuditEntry(entry({ ...rest, resultDigest: hex(2) }))).toBe(false);
    expect(isAuditEntry(entry({ ...data, groupsSuppressed: 0 }))).toBe(false);
    expect(isAuditEntry(entry({ ...data, rows: 1 }))).toBe(false);
    for (const bad of [{}, { News: hex(2) }, { news: "x" }, [hex(2)], { news: "AB".repeat(32) }]) {
      expect(isAuditEntry(entry({ ...data, resultDigests: bad }))).toBe(false);
    }
  });

  it("is refused by the log when malformed", async () => {
    const { log } = await AuditLog.start(await makeInstance());
    // biome-ignore lint/suspicious/noExplicitAny: malformed on purpose
    await expect(log.append("query-run", { ...data, groupsSuppressed: 0 } as any)).rejects.toThrow(
      UsageError,
    );
    await expect(log.append("query-run", data)).resolves.toMatchObject({ head: { seq: 2 } });
  });

  it("binds a party's ciphertext and, with the run key, the parameters", async () => {
    const key = newParamsKey();
    const ct = new Uint8Array([1, 2, 3]);
    const e = {
      ...entry({
        ...data,
        paramsDigest: await paramsDigest(key, { a: 1 }),
        resultDigests: { news: await ciphertextDigest(ct) },
      }),
      kind: "query-run" as const,
    } as Parameters<typeof runEntryBinds>[0];
    expect(await runEntryBinds(e, { party: "news", ciphertext: ct, params: { a: 1 }, paramsKey: key })).toBe(
      true,
    );
    expect(await runEntryBinds(e, { party: "news", ciphertext: new Uint8Array([1, 2]) })).toBe(false);
    expect(await runEntryBinds(e, { party: "acme", ciphertext: ct })).toBe(false);
    expect(await runEntryBinds(e, { party: "news", params: { a: 2 }, paramsKey: key })).toBe(false);
    expect(await runEntryBinds(e, { party: "news", params: { a: 1 }, paramsKey: newParamsKey() })).toBe(
      false,
    );
    expect(await runEntryBinds(e, { party: "news", params: { a: 1 } })).toBe(false);
    expect(await runEntryBinds(e, { party: "news" })).toBe(false);
  });
});

describe("isDigestMap", () => {
  it("wants party ids to hex digests, 1..64 of them, exactly the parties when given", () => {
    expect(isDigestMap({ a: hex(1) })).toBe(true);
    expect(isDigestMap({ a: hex(1), b: hex(2) }, ["b", "a"])).toBe(true);
    expect(isDigestMap({ a: hex(1) }, ["a", "b"])).toBe(false);
    expect(isDigestMap({ a: hex(1), b: hex(2) }, ["a", "a"])).toBe(false);
    expect(isDigestMap({})).toBe(false);
    expect(isDigestMap(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, hex(i)])))).toBe(
      false,
    );
  });
});
