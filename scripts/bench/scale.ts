/**
 * The scale run: two parties × 50M rows (by default), generated and age-encrypted by each owner
 * to itself straight to ciphertext files (the plaintext is never written), granted with their
 * file keys as the SDK does, loaded into an in-process Enclave (DuckDB on every available CPU)
 * and joined on the hashed id by the approved audience-overlap query. Tables are kept compressed
 * (`compress: true`); DuckDB gets a memory limit and `spill: true`, so operators past it spill
 * to <scratch>/spill on /dev/shm: memory-backed and, in this DuckDB build, NOT encrypted by
 * DuckDB (docs/INGEST.md); inside a CVM that memory is encrypted by the hardware. Sizes are
 * reduced, with a message, when the disk is short.
 */
import { createReadStream, mkdtempSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import cliProgress from "cli-progress";
import { decodeJwt } from "jose";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { PartyId } from "../demo/flow.js";
import { DATASET_OF, identitiesFor, partyRows, type Which } from "./data.js";
import { availableMemory } from "./machine.js";
import { procMemory } from "./memory.js";
import { admitParties, type Encrypted, encryptToFile, fileKeyOf, grantBody, seal, utf8 } from "./partner.js";
import { QUERY_ID } from "./privacy-tax.js";
import { seconds } from "./timing.js";

/** Ciphertext bytes per row, measured on the generator (exposures ~125, purchases ~100), rounded up. */
const BYTES_PER_ROW = 130;
const OWNER: Record<Which, PartyId> = { purchases: "advertiser", exposures: "publisher" };
const GiB = 2 ** 30;

export interface ScaleOptions {
  rowsPerParty: number;
  seed: number;
  workDir: string;
  /** DuckDB memory limit; default 45 % of available memory (the rest is for spill on /dev/shm). */
  memoryLimit?: string;
  log: (line: string) => void;
}

export interface ScaleResult {
  requestedRowsPerParty: number;
  rowsPerParty: number;
  reducedBecause: string | null;
  memoryLimit: string;
  spill: "/dev/shm (memory-backed, not encrypted by DuckDB)";
  rowsLoaded: number;
  ciphertextGB: number;
  generateEncryptS: number;
  grantDecryptLoadS: number;
  queryS: number;
  /** Groups released (of at least k people; how many were held back is counted nowhere). */
  groups: number;
  peakRssGB: number;
  peakShmGB: number;
  completed: boolean;
  error: string | null;
}

function freeBytes(path: string): number {
  const s = statfsSync(path);
  return Number(s.bavail) * Number(s.bsize);
}

function usedBytes(path: string): number {
  const s = statfsSync(path);
  return (Number(s.blocks) - Number(s.bfree)) * Number(s.bsize);
}

/** The largest row count the disk holds (ciphertext of both parties, 10 % headroom). */
export function plannedRows(requested: number, workDir: string): { rows: number; reason: string | null } {
  const fits = Math.floor((freeBytes(workDir) * 0.9) / (2 * BYTES_PER_ROW));
  if (fits >= requested) return { rows: requested, reason: null };
  const rows = Math.max(1_000_000, Math.floor(fits / 1_000_000) * 1_000_000);
  return { rows, reason: `disk: ${(freeBytes(workDir) / GiB).toFixed(1)} GiB free in ${workDir}` };
}

function bar(label: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format: `${label.padEnd(34)} [{bar}] {percentage}% | {value}/{total} {unit} | {duration_formatted}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
}

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const plan = plannedRows(o.rowsPerParty, o.workDir);
  if (plan.reason) o.log(`scale: reduced to ${plan.rows} rows per party (${plan.reason})`);
  const memoryLimit = o.memoryLimit ?? `${Math.max(1, Math.floor((availableMemory() * 0.45) / GiB))}GB`;
  const result: ScaleResult = {
    requestedRowsPerParty: o.rowsPerParty,
    rowsPerParty: plan.rows,
    reducedBecause: plan.reason,
    memoryLimit,
    spill: "/dev/shm (memory-backed, not encrypted by DuckDB)",
    rowsLoaded: 0,
    ciphertextGB: 0,
    generateEncryptS: 0,
    grantDecryptLoadS: 0,
    queryS: 0,
    groups: 0,
    peakRssGB: 0,
    peakShmGB: 0,
    completed: false,
    error: null,
  };
  const simDir = mkdtempSync(join(o.workDir, "sim-"));
  const shmBase = usedBytes("/dev/shm");
  let peakShm = 0;
  const shmTimer = setInterval(() => {
    peakShm = Math.max(peakShm, usedBytes("/dev/shm") - shmBase);
  }, 500);
  const enclave = await Enclave.start({
    provider: await createSimProvider({ dir: simDir }),
    engineOptions: { memoryLimit, spill: true, compress: true, queryTimeoutMs: 24 * 3600_000 },
  });
  try {
    const parties = await admitParties(enclave);
    const files: (Encrypted & { which: Which; fileKey: string })[] = [];
    for (const which of ["purchases", "exposures"] as const) {
      const b = bar(`generate + encrypt ${which}`);
      const ids = identitiesFor(which, plan.rows);
      b.start(ids, 0, { unit: "identities" });
      let done = 0;
      function* counted(): Generator<string> {
        for (const chunk of partyRows(which, plan.rows, o.seed)) {
          yield chunk;
          // Each chunk is 20 000 lines: progress in identities is approximate but monotone.
          done = Math.min(ids, done + Math.round(20_000 / (which === "exposures" ? 2 : 1.14)));
          b.update(done);
        }
      }
      // Each owner encrypts to itself and grants the file key, as the SDK does.
      const owner = parties.keys[OWNER[which]];
      result.generateEncryptS += await seconds(async () => {
        const e = await encryptToFile(utf8(counted()), owner.ageRecipient, join(o.workDir, `${which}.age`));
        files.push({ which, ...e, fileKey: await fileKeyOf(e.path, owner.ageIdentity) });
      });
      b.update(ids);
      b.stop();
    }
    result.ciphertextGB = files.reduce((n, f) => n + f.bytes, 0) / 1e9;
    for (const f of files) {
      const dataset = DATASET_OF[f.which].id;
      await enclave.handleRequest(
        await seal(
          parties,
          enclave,
          OWNER[f.which],
          "grant",
          await grantBody(parties, OWNER[f.which], {
            dataset,
            ciphertextDigest: f.digest,
            fileKey: f.fileKey,
          }),
        ),
      );
      const b = bar(`decrypt + load ${f.which}`);
      b.start(Math.round(f.bytes / 1e6), 0, { unit: "MB" });
      let read = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _e, done) {
          read += chunk.length;
          b.update(Math.round(read / 1e6));
          done(null, chunk);
        },
      });
      result.grantDecryptLoadS += await seconds(async () => {
        const src = createReadStream(f.path, { highWaterMark: 1 << 20 }).pipe(meter);
        // A file stream's chunks are fresh buffers, as a request body's are in the deployed server.
        const r = await enclave.ingest(dataset, f.digest, src, { ownsInput: true });
        result.rowsLoaded += (decodeJwt(r.response) as { body: { rows: number } }).body.rows;
      });
      b.stop();
      rmSync(f.path, { force: true });
    }
    o.log(
      `scale: ${QUERY_ID} over ${result.rowsLoaded} rows (no progress figure from DuckDB; elapsed shown)`,
    );
    const started = Date.now();
    const ticker = setInterval(() => o.log(`  … ${Math.round((Date.now() - started) / 1000)} s`), 30_000);
    let reply: Awaited<ReturnType<Enclave["handleRequest"]>> | undefined;
    try {
      result.queryS = await seconds(async () => {
        reply = await enclave.handleRequest(
          await seal(parties, enclave, "advertiser", "query", {
            queryId: QUERY_ID,
            params: {},
            resultFormat: "json",
          }),
        );
      });
    } finally {
      clearInterval(ticker);
    }
    const sealed = Buffer.from(reply!.results!["advertiser"]!, "base64");
    const answer = JSON.parse(
      new TextDecoder().decode(await decryptBytes(sealed, parties.keys.advertiser.ageIdentity)),
    ) as { rows: unknown[][] };
    result.groups = answer.rows.length;
    result.completed = true;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    result.error = `${err.code ?? "error"}: ${err.message ?? String(e)}`;
  } finally {
    clearInterval(shmTimer);
    result.peakRssGB = (procMemory(process.pid).hwmMB * 2 ** 20) / GiB;
    result.peakShmGB = peakShm / GiB;
    enclave.close();
    rmSync(simDir, { recursive: true, force: true });
  }
  return result;
}
