/**
 * Faults: the enclave process SIGKILLed mid-upload, mid-ingest and mid-query and restarted; the
 * enclave unreachable; the host restarted. Nothing accepted is lost (ciphertext stays at the
 * host, parties re-verify and re-grant), nothing half-loaded is used, the audit log continues
 * (the host hands a restarted enclave its stored audit log before the contract), and a dead
 * enclave gives ERR_ENCLAVE_UNAVAILABLE after bounded retries.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approveContract,
  auditVerify,
  grant,
  query,
  submitContract,
  uploadFile,
} from "../../client/node/index.js";
import { buildHost } from "../../host/app.js";
import {
  type Collaboration,
  DATASETS,
  PARTIES,
  simPolicy,
  startCollaboration,
} from "../../scripts/demo/flow.js";
import { useCaseRows } from "../../scripts/demo/usecases.js";
import { report, size } from "../fuzz/harness.js";
import { type EnclaveProcess, enclaveCall, ensureBuilt, spawnEnclave } from "./process.js";

const dir = mkdtempSync(join(tmpdir(), "cleanroom-faults-"));
const socket = join(dir, "enclave.sock");
const simDir = join(dir, "sim");
const storeDir = join(dir, "store");
const IDENTITIES = size(4_000, 20_000);
let enclave: EnclaveProcess;
let host: FastifyInstance;
let url: string;
let c: Collaboration;
const files: Record<string, string> = {};
const survived: string[] = [];

async function startHost(port = 0): Promise<void> {
  host = await buildHost({
    enclave: { socketPath: socket },
    storeDir,
    logger: false,
    rateLimit: false,
    limits: { enclaveRetryBaseMs: 50 },
  });
  await host.listen({ host: "127.0.0.1", port });
  url = `http://127.0.0.1:${(host.server.address() as { port: number }).port}`;
}

/** Waits until the enclave's audit head passes `seq` (e.g. the grant entry before an ingest). */
async function headPasses(seq: number): Promise<void> {
  for (;;) {
    const h = await enclaveCall(socket, "GET", "/v1/health").catch(() => undefined);
    if (((h?.body as { head?: { seq: number } } | undefined)?.head?.seq ?? 0) > seq) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

const enclaveHead = async () =>
  ((await enclaveCall(socket, "GET", "/v1/health")).body as { head: { seq: number } }).head;

/**
 * Restart after a kill: a new process, then the contract re-submitted through the host, which
 * first hands the new enclave its stored audit log (POST /v1/audit/restore).
 */
async function restart(): Promise<void> {
  enclave = await spawnEnclave(socket, simDir);
  const stored = readFileSync(join(storeDir, "audit.jsonl"), "utf8").trim().split("\n").length;
  const approvals = await Promise.all(PARTIES.map((id) => approveContract(c.contract, c.clients[id].keys)));
  await submitContract(c.clients.advertiser.host, c.contract, approvals, simPolicy(simDir));
  // The new chain continues the stored one: restored entries, enclave-started, contract-accepted.
  expect((await enclaveHead()).seq).toBe(stored + 2);
  // Parties re-verify the new instance: its keys are what the audit segments are checked with.
  for (const id of PARTIES) await c.clients[id].reattest();
}

beforeAll(async () => {
  ensureBuilt();
  enclave = await spawnEnclave(socket, simDir);
  await startHost();
  c = await startCollaboration(url, simDir);
  for (const id of PARTIES) await c.clients[id].reattest();
  for (const { dataset, rows } of DATASETS) {
    files[dataset.id] = join(dir, `${dataset.id}.csv`);
    writeFileSync(files[dataset.id]!, [...useCaseRows(rows, { identities: IDENTITIES })].join(""));
  }
}, 180_000);

afterAll(async () => {
  await host?.close();
  await enclave?.kill();
  await rm(dir, { recursive: true, force: true });
  report({
    suite: "faults",
    name: "enclave-and-host",
    faultsSurvived: survived.length,
    faults: survived.join("; "),
  });
});

describe("enclave killed and restarted", () => {
  let digest: string;

  it("mid-upload: the upload (host only) completes; the enclave is not needed for it", async () => {
    // Attested before (uploads refuse to start otherwise); from then on an upload is host-only.
    await c.clients.advertiser.attestation();
    const upload = uploadFile(c.clients.advertiser, files["advertiser_purchases"]!);
    await enclave.kill();
    digest = (await upload).digest;
    const head = await fetch(`${url}/api/v1/blobs/${digest}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    await restart();
    survived.push("kill mid-upload");
  });

  it("unreachable: a clear ERR_ENCLAVE_UNAVAILABLE after bounded retries", async () => {
    await enclave.kill();
    const t0 = performance.now();
    const res = await fetch(`${url}/api/v1/evidence?nonce=${"ab".repeat(32)}`);
    const ms = performance.now() - t0;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_ENCLAVE_UNAVAILABLE");
    // Two retries at 50 ms doubling: well under a second, not a hang.
    expect(ms).toBeLessThan(2_000);
    const health = (await (await fetch(`${url}/api/v1/health`)).json()) as { ok: boolean };
    expect(health.ok).toBe(false);
    await restart();
    survived.push("enclave unreachable");
  });

  it("mid-ingest: the grant fails clearly; after a restart the same ciphertext is re-granted and loads whole", async () => {
    const before = (await enclaveHead()).seq;
    // Settled into a value at once, so the failure is never an unhandled rejection meanwhile.
    const granting = grant(c.clients.advertiser, {
      dataset: "advertiser_purchases",
      ciphertextDigest: digest,
    }).then(
      () => ({ status: 200 }),
      (e: { status: number }) => e,
    );
    await headPasses(before); // the grant entry is written: the host is now streaming the ingest
    await enclave.kill();
    expect([502, 503]).toContain((await granting).status);
    // Nothing accepted is lost: the ciphertext is still at the host.
    expect((await fetch(`${url}/api/v1/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
    await restart();
    // The new instance has nothing half-loaded: the dataset is not there until granted again.
    const g = await grant(c.clients.advertiser, {
      dataset: "advertiser_purchases",
      ciphertextDigest: digest,
    });
    const lines = readFileSync(files["advertiser_purchases"]!, "utf8").trim().split("\n").length - 1;
    expect(g.rows).toBe(lines);
    survived.push("kill mid-ingest");
  });

  it("mid-query: the query fails clearly or completes; after a restart and re-grant it runs", async () => {
    const up = await uploadFile(c.clients.publisher, files["publisher_exposures"]!);
    await grant(c.clients.publisher, { dataset: "publisher_exposures", ciphertextDigest: up.digest });
    const before = (await enclaveHead()).seq;
    const running = query(c.clients.advertiser, {
      queryId: "closed-loop",
      params: { campaign: "spring24" },
      format: "json",
    }).then(
      () => "completed",
      (e: { status?: number }) => e.status,
    );
    await new Promise((r) => setTimeout(r, 1));
    await enclave.kill();
    const r = await running;
    expect(["completed", 502, 503]).toContain(r);
    await restart();
    expect((await enclaveHead()).seq).toBeGreaterThan(before);
    for (const [owner, ds] of [
      ["advertiser", "advertiser_purchases"],
      ["publisher", "publisher_exposures"],
    ] as const) {
      const d = ds === "advertiser_purchases" ? digest : up.digest;
      await grant(c.clients[owner], { dataset: ds, ciphertextDigest: d });
    }
    const again = await query(c.clients.advertiser, {
      queryId: "closed-loop",
      params: { campaign: "spring24" },
      format: "json",
    });
    expect((again.rows as { rows: unknown[] }).rows.length).toBeGreaterThan(0);
    survived.push("kill mid-query");
  });

  it("the audit log continues across every instance and both parties verify it", async () => {
    for (const id of PARTIES) {
      const log = await auditVerify(c.clients[id]);
      const starts = log.entries.filter((e) => e.kind === "enclave-started").length;
      expect(starts).toBeGreaterThanOrEqual(5);
    }
  });
});

describe("host restarted", () => {
  it("an interrupted upload keeps nothing; uploads are idempotent by digest across a restart", async () => {
    const bytes = readFileSync(files["publisher_exposures"]!);
    const fake = "cd".repeat(32);
    const port = (host.server.address() as { port: number }).port;
    const { connect } = await import("node:net");
    await new Promise<void>((resolve) => {
      const s = connect(port, "127.0.0.1", () => {
        s.write(
          `PUT /api/v1/blobs/${fake} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${bytes.length}\r\n\r\n`,
        );
        s.write(bytes.subarray(0, 10_000), () => {
          s.destroy();
          resolve();
        });
      });
    });
    await host.close();
    await startHost(port);
    expect((await fetch(`${url}/api/v1/blobs/${fake}`, { method: "HEAD" })).status).toBe(404);
    // A client resuming after the restart re-sends the same ciphertext: stored once (200, not 201).
    const blobs = readdirSync(join(storeDir, "blobs"));
    expect(blobs.length).toBeGreaterThanOrEqual(2);
    for (const id of blobs) {
      const again = await fetch(`${url}/api/v1/blobs/${id}`, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body: readFileSync(join(storeDir, "blobs", id)),
      });
      expect(again.status).toBe(200);
    }
    const log = await auditVerify(c.clients.publisher);
    expect(log.entries.length).toBeGreaterThan(10);
    survived.push("host restart mid-upload");
  });
});
