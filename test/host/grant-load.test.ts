/**
 * A grant through the host to a real enclave: the load's progress (bytes, rows) on
 * GET /grants/progress while it runs, no connection limit cutting a long load, and a repeated
 * grant answered with the first load's answer.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, type Served } from "../../enclave/server.js";
import type { SqlEngine } from "../../enclave/sql/engine.js";
import { parseEntryPayload } from "../../protocol/audit/entry.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import {
  encryptToSelf,
  grantBody,
  members,
  membersByTier,
  openWorld,
  sealed,
  sha256hex,
  utf8,
  type World,
} from "../enclave/world.js";
import { startHost, type TestHost } from "./helpers.js";

const byTier = membersByTier("members-by-tier");

let dir: string;
let world: World;
let served: Served;
let host: TestHost;
let url: string;
let ciphertext: Uint8Array;
let fileKey: string;
let digest: string;
const ROWS = 5000;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "grant-load-"));
  world = await openWorld([byTier], [members]);
  served = await listen(world.enclave, { path: join(dir, "enclave.sock") });
  // A connection limit far below the load's time: the grant's connection must not be cut by it.
  host = await startHost(
    { socketPath: join(dir, "enclave.sock") },
    { limits: { connectionTimeoutMs: 1000 } },
  );
  await host.app.listen({ host: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${(host.app.server.address() as AddressInfo).port}/api/v1`;
  let text = "user_id,tier\n";
  for (let i = 0; i < ROWS; i++) text += `${createHash("sha256").update(`p${i}`).digest("hex")},gold\n`;
  ({ ciphertext, fileKey } = await encryptToSelf(world.publisher, utf8(text)));
  digest = sha256hex(ciphertext);
  const put = await fetch(`${url}/blobs/${digest}`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: Buffer.from(ciphertext),
  });
  expect(put.status).toBe(201);
});
afterAll(async () => {
  await host.close();
  await served.close();
  world.enclave.close();
  rmSync(dir, { recursive: true, force: true });
});

async function postGrant(): Promise<Response> {
  const body = await grantBody(world.contract, world.publisher, {
    dataset: members.id,
    ciphertextDigest: digest,
    fileKey,
  });
  const jwe = await sealed(world.enclave, world.contract, world.publisher, "grant", body);
  return fetch(`${url}/grants`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jwe, dataset: members.id, digest }),
  });
}

const progress = async () =>
  (await fetch(`${url}/grants/progress?dataset=${members.id}&digest=${digest}`)).json();

interface Ingested {
  rows: number;
  version: number;
  qualityDigest: string;
}

/** A grant's answer: 200, with the enclave's signed ingest answer for all ROWS as the first version. */
async function expectFirstLoad(res: Response): Promise<void> {
  expect(res.status).toBe(200);
  const { ingest } = (await res.json()) as { ingest: { response: string; quality: string } };
  const { body } = await verifyResponse<Ingested>(ingest.response, world.enclave.keys.publicKeys.signingKey);
  expect(body).toMatchObject({ rows: ROWS, version: 1 });
}

describe("POST /grants", () => {
  it("reports the load's progress while it runs, and is not cut by the connection limit", async () => {
    expect(await progress()).toEqual({ loading: false });
    // A query holding the tables keeps the load from switching versions: it waits, fully read.
    const engine = (world.enclave as unknown as { engine: SqlEngine }).engine;
    let release!: () => void;
    const held = engine.tables.read(() => new Promise<void>((r) => (release = r)));
    const granting = postGrant();
    let p: Record<string, unknown> = {};
    for (let i = 0; i < 100 && p.rows !== ROWS; i++) {
      await new Promise((r) => setTimeout(r, 50));
      p = await progress();
    }
    expect(p).toEqual({
      loading: true,
      version: 1,
      bytes: ciphertext.length,
      total: ciphertext.length,
      rows: ROWS,
    });
    // Past the host's 1 s connection limit.
    await new Promise((r) => setTimeout(r, 1500));
    release();
    await held;
    await expectFirstLoad(await granting);
    expect(await progress()).toEqual({ loading: false });
  });

  it("a repeated grant is answered with the first load's answer, not loaded again", async () => {
    await expectFirstLoad(await postGrant());
    const loads = world.enclave
      .audit()
      .entries.map((j) => parseEntryPayload(Buffer.from(j.split(".")[1]!, "base64url"))!)
      .filter((e) => e.kind === "dataset-loaded");
    expect(loads).toHaveLength(1);
  });
});
