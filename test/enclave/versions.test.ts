/**
 * Dataset versions: a grant names the version it replaces or appends to; the enclave keeps the
 * lineage in the audit log and every query names the versions it read; a failed or empty load
 * leaves the previous version in place; a repeated grant gets the first load's answer; the
 * differencing guard is not reset by a replacement; the contract's share of invalid identities.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { Enclave } from "../../enclave/runtime.js";
import { parseEntryPayload } from "../../protocol/audit/entry.js";
import type { Contract, Dataset } from "../../protocol/contract/types.js";
import type { GrantBody } from "../../protocol/jose/messages.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import {
  encryptToSelf,
  grantBody,
  members,
  membersByTier,
  openResult,
  openWorld,
  type Party,
  pieces,
  sealed,
  sha256hex,
  utf8,
} from "./world.js";

/** Without the differencing guard, so the same answer can be read again to see the state. */
const byTier = membersByTier("members-by-tier", { differencingGuard: false });

/** The same query under the differencing guard. */
const guarded = membersByTier("members-by-tier-guarded");

const id = (i: number) => createHash("sha256").update(`person-${i}`).digest("hex");

/** `count` people from `from` on, in `tier`, one row each. */
function rows(from: number, count: number, tier: string): string {
  let out = "";
  for (let i = from; i < from + count; i++) out += `${id(i)},${tier}\n`;
  return out;
}

const csv = (body: string) => `user_id,tier\n${body}`;

let world: Awaited<ReturnType<typeof openWorld>> | undefined;
afterEach(() => {
  world?.enclave.close();
  world = undefined;
});

async function open(
  ds: Dataset = members,
): Promise<{ enclave: Enclave; contract: Contract; owner: Party; analyst: Party }> {
  world = await openWorld([byTier, guarded], [ds]);
  return {
    enclave: world.enclave,
    contract: world.contract,
    owner: world.publisher,
    analyst: world.advertiser,
  };
}

interface Loaded {
  rows: number;
  version: number;
  mode: string;
  totalRows: number;
  qualityDigest: string;
}

/** The owner grants `text` (naming `previous`/`mode` when given) and the enclave loads it. */
async function load(
  w: { enclave: Enclave; contract: Contract; owner: Party },
  text: string,
  extra: Pick<GrantBody, "previous" | "mode"> = {},
  stream?: (ciphertext: Uint8Array) => Readable,
): Promise<{ body: Loaded; quality: string; digest: string }> {
  const { ciphertext, fileKey } = await encryptToSelf(w.owner, utf8(text));
  const digest = sha256hex(ciphertext);
  await grant(w, digest, fileKey, extra);
  const loaded = await w.enclave.ingest(members.id, digest, (stream ?? pieces)(ciphertext));
  const { body } = await verifyResponse<Loaded>(loaded.response, w.enclave.keys.publicKeys.signingKey);
  return { body, quality: loaded.quality, digest };
}

async function grant(
  w: { enclave: Enclave; contract: Contract; owner: Party },
  digest: string,
  fileKey: string,
  extra: Pick<GrantBody, "previous" | "mode"> = {},
): Promise<void> {
  await w.enclave.handleRequest(
    await sealed(
      w.enclave,
      w.contract,
      w.owner,
      "grant",
      await grantBody(w.contract, w.owner, {
        dataset: members.id,
        ciphertextDigest: digest,
        fileKey,
        ...extra,
      }),
    ),
  );
}

async function run(w: { enclave: Enclave; contract: Contract; analyst: Party }, query = byTier) {
  const reply = await w.enclave.handleRequest(
    await sealed(w.enclave, w.contract, w.analyst, "query", {
      queryId: query.id,
      params: {},
      resultFormat: "json",
    }),
  );
  const { body } = await verifyResponse<{ versions: Record<string, number> }>(
    reply.response,
    w.enclave.keys.publicKeys.signingKey,
  );
  const result = JSON.parse(await openResult(w.analyst, reply.results!["advertiser"]!)) as {
    rows: [string, number][];
  };
  return { versions: body.versions, rows: Object.fromEntries(result.rows.map(([t, n]) => [t, Number(n)])) };
}

function auditData(enclave: Enclave, kind: string): Record<string, unknown>[] {
  return enclave
    .audit()
    .entries.map((jws) => parseEntryPayload(Buffer.from(jws.split(".")[1]!, "base64url"))!)
    .filter((e) => e.kind === kind)
    .map((e) => e.data as unknown as Record<string, unknown>);
}

const code = (c: string) => expect.objectContaining({ code: c });

describe("dataset versions", () => {
  it("replaces and appends when the grant names the current version; queries name what they read", async () => {
    const w = await open();
    const v1 = await load(w, csv(rows(0, 30, "gold")));
    expect(v1.body).toMatchObject({ rows: 30, version: 1, mode: "new", totalRows: 30 });
    expect(await run(w)).toEqual({ versions: { members: 1 }, rows: { gold: 30 } });

    // Another file without naming the version it builds on, or naming a stale one: refused.
    const next = csv(rows(100, 40, "silver"));
    await expect(load(w, next)).rejects.toEqual(code("ERR_DATASET_VERSION"));
    await expect(load(w, next, { previous: 2 })).rejects.toEqual(code("ERR_DATASET_VERSION"));

    const v2 = await load(w, next, { previous: 1 });
    expect(v2.body).toMatchObject({ rows: 40, version: 2, mode: "replace", totalRows: 40 });
    expect(await run(w)).toEqual({ versions: { members: 2 }, rows: { silver: 40 } });

    const v3 = await load(w, csv(rows(200, 25, "gold")), { previous: 2, mode: "append" });
    expect(v3.body).toMatchObject({ rows: 25, version: 3, mode: "append", totalRows: 65 });
    expect(await run(w)).toEqual({ versions: { members: 3 }, rows: { gold: 25, silver: 40 } });

    // The lineage is in the audit log, and every run names the versions it read.
    expect(auditData(w.enclave, "dataset-loaded")).toEqual([
      { dataset: "members", ciphertextDigest: v1.digest, rows: 30, version: 1, mode: "new", totalRows: 30 },
      {
        dataset: "members",
        ciphertextDigest: v2.digest,
        rows: 40,
        version: 2,
        mode: "replace",
        totalRows: 40,
      },
      {
        dataset: "members",
        ciphertextDigest: v3.digest,
        rows: 25,
        version: 3,
        mode: "append",
        totalRows: 65,
      },
    ]);
    expect(auditData(w.enclave, "query-run").map((d) => d.versions)).toEqual([
      { members: 1 },
      { members: 2 },
      { members: 3 },
    ]);
  });

  it("a failed or empty load leaves the previous version in place, and a corrected one loads", async () => {
    const w = await open();
    // An empty first load is refused and leaves nothing: the dataset stays unloaded.
    await expect(load(w, "user_id,tier\n")).rejects.toEqual(code("ERR_INGEST_EMPTY"));
    await load(w, csv(rows(0, 20, "gold")));
    const before = await run(w);

    await expect(load(w, "user_id,tier\n", { previous: 1 })).rejects.toEqual(code("ERR_INGEST_EMPTY"));
    // Every identity missing: nothing to load either.
    await expect(load(w, csv(",gold\n,gold\n"), { previous: 1 })).rejects.toEqual(code("ERR_INGEST_EMPTY"));
    await expect(
      load(w, csv(`${rows(0, 5, "gold")}not-hashed@example.com,gold\n`), { previous: 1 }),
    ).rejects.toEqual(code("ERR_INGEST_IDENTITY_FORMAT"));
    await expect(load(w, `user_id,tier,extra\n${id(1)},gold,1\n`, { previous: 1 })).rejects.toEqual(
      code("ERR_INGEST_SCHEMA"),
    );
    // A stream that breaks half-way.
    const broken = (ct: Uint8Array) =>
      Readable.from(
        (async function* () {
          yield ct.subarray(0, 200);
          throw new Error("connection reset");
        })(),
      );
    await expect(load(w, csv(rows(500, 50, "bronze")), { previous: 1 }, broken)).rejects.toEqual(
      code("ERR_INGEST_FAILED"),
    );
    expect(await run(w)).toEqual(before);
    expect(auditData(w.enclave, "dataset-loaded")).toHaveLength(1);

    const fixed = await load(w, csv(rows(0, 25, "gold")), { previous: 1 });
    expect(fixed.body).toMatchObject({ version: 2, rows: 25 });
  });

  it("a repeated grant gets the first load's answer and quality report, during the load and after it", async () => {
    const w = await open();
    const text = csv(rows(0, 3000, "gold"));
    const { ciphertext, fileKey } = await encryptToSelf(w.owner, utf8(text));
    const digest = sha256hex(ciphertext);
    await grant(w, digest, fileKey);
    // A slow first load, repeated while it runs: both answers are the same load.
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = Readable.from(
      (async function* () {
        yield ciphertext.subarray(0, 1000);
        await gate;
        yield ciphertext.subarray(1000);
      })(),
    );
    const first = w.enclave.ingest(members.id, digest, slow);
    await new Promise((r) => setTimeout(r, 50));
    expect(w.enclave.loads().loads).toEqual([
      { dataset: "members", ciphertextDigest: digest, version: 1, bytes: 1000, rows: 0 },
    ]);
    await grant(w, digest, fileKey);
    const during = w.enclave.ingest(members.id, digest, pieces(ciphertext));
    release();
    const [a, b] = await Promise.all([first, during]);
    const key = w.enclave.keys.publicKeys.signingKey;
    const bodyA = (await verifyResponse<Loaded>(a.response, key)).body;
    expect(bodyA).toMatchObject({ rows: 3000, version: 1 });
    expect((await verifyResponse<Loaded>(b.response, key)).body).toMatchObject({
      rows: 3000,
      version: 1,
      qualityDigest: bodyA.qualityDigest,
    });
    expect(b.quality).toBe(a.quality);
    // After it, again: still the same answer, and one load in the audit log.
    await grant(w, digest, fileKey);
    const after = await w.enclave.ingest(members.id, digest, pieces(ciphertext));
    expect((await verifyResponse<Loaded>(after.response, key)).body).toMatchObject({
      version: 1,
      rows: 3000,
    });
    expect(after.quality).toBe(a.quality);
    expect(auditData(w.enclave, "dataset-loaded")).toHaveLength(1);
    expect(w.enclave.loads().loads).toEqual([]);
  });

  it("a replacement does not reset the differencing guard", async () => {
    const w = await open();
    await load(w, csv(rows(0, 20, "gold") + rows(1000, 20, "silver")));
    expect((await run(w, guarded)).rows).toEqual({ gold: 20, silver: 20 });
    // One more person in gold: that group differs from the released one by 1 < k, so it is held
    // back; silver, the same people again, too (an identical set is never released twice).
    await load(w, csv(rows(0, 21, "gold") + rows(1000, 20, "silver")), { previous: 1 });
    const after = await run(w, guarded);
    expect(after.versions).toEqual({ members: 2 });
    expect(after.rows).toEqual({});
    // The unguarded query shows both groups are there.
    expect((await run(w)).rows).toEqual({ gold: 21, silver: 20 });
  });

  it("drops wrong-format identities within the contract's share and refuses a load past it", async () => {
    const w = await open({ ...members, maxInvalidIdentityShare: 0.1 });
    const bad = (n: number) => Array.from({ length: n }, (_, i) => `someone${i}@example.com,gold\n`).join("");
    const within = await load(w, csv(rows(0, 95, "gold") + bad(5)));
    expect(within.body).toMatchObject({ rows: 95, version: 1 });
    await expect(load(w, csv(rows(0, 80, "gold") + bad(20)), { previous: 1 })).rejects.toEqual(
      code("ERR_INGEST_IDENTITY_FORMAT"),
    );
    expect((await run(w)).rows).toEqual({ gold: 95 });
  });
});
