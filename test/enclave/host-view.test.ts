/**
 * What the host sees of a query run gives it nothing to invert: it holds the signed response,
 * every recipient's ciphertext and the audit entry, and runs the dictionary attack that recovered
 * values from the former unsalted digests (a count from every integer 0..100 000, a queried
 * person's e-mail from a list of 1 000). Nothing matches, and no count is in the clear, while
 * every party of the run still verifies the digests against what it holds.
 */
import { createHash } from "node:crypto";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBase64 } from "../../attestation/bytes.js";
import type { Enclave } from "../../enclave/runtime.js";
import { resultToCsv, resultToJson } from "../../enclave/sql/run.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { AuditEntry } from "../../protocol/audit/entry.js";
import { ciphertextDigest, paramsDigest, runEntryBinds } from "../../protocol/audit/query-run.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { canonicalBytes } from "../../protocol/contract/digest.js";
import type { ApprovedQuery, Contract } from "../../protocol/contract/types.js";
import type { QueryResponseBody } from "../../protocol/jose/messages.js";
import { hashedEmail } from "../sql/usecases.js";
import { testPolicy } from "./sim.js";
import {
  openReceipt,
  openResult,
  openWorld,
  type Party,
  RESPONSE_BODY_KEYS,
  referrals,
  sealed,
  serveCsv,
} from "./world.js";

/** How many people one (queried) person referred: a single low-entropy integer. */
const referredBy: ApprovedQuery = {
  id: "referred-by",
  sql: "SELECT count(DISTINCT r.user_id) AS n FROM referrals r WHERE r.referrer = $referrer",
  parameters: [{ name: "referrer", type: "VARCHAR" }],
  runners: ["advertiser"],
  recipients: ["advertiser", "publisher"],
  policy: { kind: "aggregation", minDistinctIdentities: 10, allowedColumns: ["n"] },
};

const EMAILS = Array.from({ length: 1000 }, (_, i) => `person.${i}@example.com`);
const TARGET = EMAILS[737]!;
const SECRET = 534;

function referralsCsv(): string {
  const lines = ["user_id,referrer"];
  let id = 0;
  for (let i = 0; i < SECRET; i++) lines.push(`${hashedEmail(id++)},${TARGET}`);
  for (let i = 0; i < 3000; i++) lines.push(`${hashedEmail(id++)},${EMAILS[i % 50]}`);
  return `${lines.join("\n")}\n`;
}

let enclave: Enclave;
let contract: Contract;
let advertiser: Party;
let publisher: Party;
/** Everything the host holds of the run. */
let seen: {
  response: string;
  body: QueryResponseBody;
  results: Record<string, string>;
  entry: AuditEntry<"query-run">;
};

beforeAll(async () => {
  ({ enclave, contract, advertiser, publisher } = await openWorld([referredBy], [referrals]));
  await serveCsv(enclave, contract, publisher, referrals.id, referralsCsv());
  const reply = await enclave.handleRequest(
    await sealed(enclave, contract, advertiser, "query", {
      queryId: referredBy.id,
      params: { referrer: TARGET },
      resultFormat: "csv",
    }),
  );
  const { entries } = enclave.audit(1);
  const log = await verifyAuditLog(entries, await testPolicy());
  seen = {
    response: reply.response,
    body: (decodeJwt(reply.response) as unknown as { body: QueryResponseBody }).body,
    results: reply.results!,
    entry: log.entries.at(-1) as AuditEntry<"query-run">,
  };
});
afterAll(() => enclave.close());

/** Every 64-hex value anywhere in what the host holds (response payload, audit entries). */
function hostDigests(): Set<string> {
  const texts = [
    JSON.stringify(decodeJwt(seen.response)),
    ...enclave.audit(1).entries.map((e) => JSON.stringify(decodeJwt(e))),
  ];
  return new Set(texts.flatMap((t) => t.match(/[0-9a-f]{64}/g) ?? []));
}

const sha = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

describe("the host's view of a query run", () => {
  it("the run answered the secret count to both recipients (the attack's target is real)", async () => {
    for (const p of [advertiser, publisher]) {
      expect(await openResult(p, seen.results[p.id]!)).toBe(`n\n${SECRET}\n`);
    }
  });

  it("a dictionary of every count 0..100 000 matches no digest the host holds", async () => {
    const columns = [{ name: "n", type: "BIGINT" }];
    const candidates = (n: number) => {
      const r = { columns, rows: [[String(n)]] };
      return [resultToCsv(r), resultToJson(r), resultToJson({ ...r, rows: [[n]] })];
    };
    // The dictionary is right: the plaintext's plain digest is in it (the former resultDigest).
    const plain = await decryptBytes(fromBase64(seen.results.advertiser!), advertiser.identity);
    const dictionary = new Set<string>();
    for (let n = 0; n <= 100_000; n++) for (const c of candidates(n)) dictionary.add(sha(c));
    expect(dictionary.has(sha(plain))).toBe(true);
    const held = hostDigests();
    expect(held.size).toBeGreaterThan(5);
    expect([...held].filter((d) => dictionary.has(d))).toEqual([]);
  });

  it("a list of 1 000 e-mails matches no parameter digest the host holds", async () => {
    const dictionary = new Set(
      EMAILS.flatMap((referrer) => [
        sha(canonicalBytes({ referrer })),
        sha(referrer),
        sha(canonicalBytes(referrer)),
      ]),
    );
    expect(dictionary.has(sha(canonicalBytes({ referrer: TARGET })))).toBe(true);
    expect([...hostDigests()].filter((d) => dictionary.has(d))).toEqual([]);
  });

  it("no count is in the clear: not in the response, not in the audit entry", () => {
    expect(Object.keys(seen.body).sort()).toEqual(RESPONSE_BODY_KEYS);
    // `guard`: the digest of the run's sealed guard history (opaque ciphertext at the host).
    expect(Object.keys(seen.entry.data).sort()).toEqual([
      "epsilon",
      "guard",
      "paramsDigest",
      "query",
      "requester",
      "resultDigests",
      "versions",
    ]);
  });

  it("receipts have one size whatever they hold (the requester's and a recipient's alike)", () => {
    const sizes = new Set(Object.values(seen.body.receipts).map((b) => fromBase64(b).length));
    expect(sizes.size).toBe(1);
  });

  it("every party of the run verifies the digests against what it holds, and the chain binds them", async () => {
    for (const p of [advertiser, publisher]) {
      const ciphertext = fromBase64(seen.results[p.id]!);
      expect(seen.body.resultDigests[p.id]).toBe(await ciphertextDigest(ciphertext));
      const receipt = await openReceipt(p, seen.body.receipts[p.id]!);
      expect(receipt).toMatchObject({ party: p.id, rows: 1 });
      expect(receipt).not.toHaveProperty("groupsSuppressed");
      expect(await paramsDigest(receipt.paramsKey, { referrer: TARGET })).toBe(seen.body.paramsDigest);
      expect(
        await runEntryBinds(seen.entry, {
          party: p.id,
          ciphertext,
          params: { referrer: TARGET },
          paramsKey: receipt.paramsKey,
        }),
      ).toBe(true);
      // Another recipient's file, or another e-mail, does not bind.
      const other = p === advertiser ? publisher : advertiser;
      expect(
        await runEntryBinds(seen.entry, { party: p.id, ciphertext: fromBase64(seen.results[other.id]!) }),
      ).toBe(false);
      expect(
        await runEntryBinds(seen.entry, {
          party: p.id,
          params: { referrer: EMAILS[0] },
          paramsKey: receipt.paramsKey,
        }),
      ).toBe(false);
    }
  });
});
