/**
 * Measurement 1, the privacy tax: the same two CSV files and the same approved join, once through
 * the clean room (age-encrypted by the partner; then, inside an in-process Enclave: grant,
 * streaming decrypt into DuckDB, approved query with its output policy, result encrypted to each
 * recipient) and once in plain DuckDB (unlocked, read_csv of the plaintext files, same SQL).
 */
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { decodeJwt } from "jose";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { ApprovedQuery, Dataset } from "../../protocol/contract/types.js";
import type { PartyId } from "../demo/flow.js";
import { useCaseQueries } from "../demo/usecases.js";
import type { DataFile } from "./data.js";
import { DATASET_OF } from "./data.js";
import { rssSampler } from "./memory.js";
import { admitParties, type Encrypted, encryptFile, seal } from "./partner.js";
import { seconds } from "./timing.js";

/** The approved aggregate join measured: the equi-join on the hashed id, as in the scale run. */
export const QUERY_ID = "audience-overlap";
const OWNER: Record<DataFile["which"], PartyId> = { purchases: "advertiser", exposures: "publisher" };

export interface EngineSettings {
  memoryLimit: string;
  threads: number;
  spill?: boolean;
  scratchRoot?: string;
}

export interface EnclaveRun {
  /** Partner cost: age encryption of both files (not part of the enclave's time). */
  partnerEncryptS: number;
  grantS: number;
  /** Streaming age decryption straight into DuckDB, both datasets (one pipeline, not separable). */
  decryptLoadS: number;
  /** Approved query: check, run, output policy, result encrypted to both recipients, signed answer. */
  queryS: number;
  totalS: number;
  rowsLoaded: number;
  peakRssDeltaMB: number;
  rows: unknown[][];
  groupsSuppressed: number;
}

export interface PlainRun {
  loadS: number;
  queryS: number;
  totalS: number;
  rows: unknown[][];
}

export interface TaxResult {
  rowsPerParty: number;
  rows: Record<DataFile["which"], number>;
  csvMB: number;
  enclave: Omit<EnclaveRun, "rows">;
  plain: Omit<PlainRun, "rows">;
  /** Enclave total / plain total (decrypt + load + query). */
  ratio: number;
  /** The same, with the partners' encryption added to the clean-room side. */
  ratioWithEncrypt: number;
  /** Whether the decrypted clean-room answer equals plain DuckDB's on every unsuppressed group. */
  resultsMatch: boolean;
}

function query(): ApprovedQuery {
  return useCaseQueries.find((q) => q.id === QUERY_ID)!;
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

function readCsvSql(d: Dataset, path: string): string {
  const columns = d.columns.map((c) => `${sqlText(c.name)}: ${sqlText(c.type)}`).join(", ");
  return (
    `CREATE TABLE ${d.id} AS SELECT * FROM read_csv(${sqlText(path)}, header = true, ` +
    `auto_detect = false, delim = ',', quote = '"', escape = '"', columns = {${columns}})`
  );
}

export async function runPlain(files: DataFile[], s: EngineSettings): Promise<PlainRun> {
  // The engine settings that change speed are the enclave's (enclave/sql/engine.ts), so the
  // difference measured is the privacy machinery, not configuration.
  const db = await DuckDBInstance.create(":memory:", {
    memory_limit: s.memoryLimit,
    threads: String(s.threads),
    preserve_insertion_order: "false",
  });
  const conn = await db.connect();
  try {
    const load = await seconds(async () => {
      for (const f of files) await conn.run(readCsvSql(DATASET_OF[f.which], f.path));
    });
    let rows: unknown[][] = [];
    const q = await seconds(async () => {
      rows = (await conn.runAndReadAll(query().sql)).getRowsJson() as unknown[][];
    });
    return { loadS: load, queryS: q, totalS: load + q, rows };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export async function runEnclave(
  files: DataFile[],
  s: EngineSettings,
  workDir: string,
  progress?: (stage: string) => void,
): Promise<EnclaveRun> {
  const simDir = mkdtempSync(join(workDir, "sim-"));
  const enclave = await Enclave.start({
    provider: await createSimProvider({ dir: simDir }),
    engineOptions: {
      memoryLimit: s.memoryLimit,
      threads: s.threads,
      queryTimeoutMs: 6 * 3600_000,
      ...(s.spill ? { spill: true } : {}),
      ...(s.scratchRoot ? { scratchRoot: s.scratchRoot } : {}),
    },
  });
  try {
    const parties = await admitParties(enclave);
    const recipient = enclave.keys.publicKeys.ageRecipient;
    progress?.("partner: age-encrypting");
    const encrypted: (Encrypted & { f: DataFile })[] = [];
    let partnerEncryptS = 0;
    for (const f of files) {
      partnerEncryptS += await seconds(async () => {
        encrypted.push({ f, ...(await encryptFile(f.path, recipient, join(workDir, `${f.which}.age`))) });
      });
    }
    const sampler = rssSampler();
    let grantS = 0;
    let decryptLoadS = 0;
    let rowsLoaded = 0;
    for (const e of encrypted) {
      const party = OWNER[e.f.which];
      const body = { dataset: e.f.dataset, ciphertextDigest: e.digest };
      grantS += await seconds(async () => {
        await enclave.handleRequest(await seal(parties, enclave, party, "grant", body));
      });
      progress?.(`enclave: decrypt + load ${e.f.dataset}`);
      decryptLoadS += await seconds(async () => {
        const r = await enclave.ingest(
          e.f.dataset,
          e.digest,
          createReadStream(e.path, { highWaterMark: 1 << 20 }),
        );
        rowsLoaded += (decodeJwt(r.response) as { body: { rows: number } }).body.rows;
      });
      rmSync(e.path, { force: true });
    }
    progress?.(`enclave: ${QUERY_ID}`);
    let reply: Awaited<ReturnType<Enclave["handleRequest"]>> | undefined;
    const body = { queryId: QUERY_ID, params: {}, resultFormat: "json" as const };
    const queryS = await seconds(async () => {
      reply = await enclave.handleRequest(await seal(parties, enclave, "advertiser", "query", body));
    });
    const { peakMB, baseMB } = sampler.stop();
    const sealed = Buffer.from(reply!.results!["advertiser"]!, "base64");
    const plain = await decryptBytes(sealed, parties.keys.advertiser.ageIdentity);
    const result = JSON.parse(new TextDecoder().decode(plain)) as {
      rows: unknown[][];
      groupsSuppressed: number;
    };
    return {
      partnerEncryptS,
      grantS,
      decryptLoadS,
      queryS,
      totalS: grantS + decryptLoadS + queryS,
      rowsLoaded,
      peakRssDeltaMB: peakMB - baseMB,
      rows: result.rows,
      groupsSuppressed: result.groupsSuppressed,
    };
  } finally {
    enclave.close();
    rmSync(simDir, { recursive: true, force: true });
  }
}

/**
 * Plain, then the clean room, each with the whole machine to itself; `rounds` times, keeping each
 * side's fastest run (this shared 2-vCPU machine moves single runs by ±20 %).
 */
export async function benchPrivacyTax(
  files: DataFile[],
  rowsPerParty: number,
  s: EngineSettings,
  workDir: string,
  progress?: (stage: string) => void,
  rounds = 2,
): Promise<TaxResult> {
  let plain: PlainRun | undefined;
  let enclave: EnclaveRun | undefined;
  for (let r = 1; r <= rounds; r++) {
    progress?.(`round ${r}/${rounds}: plain DuckDB: read_csv + query`);
    const p = await runPlain(files, s);
    const e = await runEnclave(files, s, workDir, progress);
    if (!plain || p.totalS < plain.totalS) plain = p;
    if (!enclave || e.totalS < enclave.totalS) enclave = e;
  }
  if (!plain || !enclave) throw new RangeError("bench: rounds must be at least 1");
  const { rows: plainRows, ...plainTimes } = plain;
  const { rows: enclaveRows, ...enclaveTimes } = enclave;
  // Groups under k are suppressed in the clean room; every released row must be plain DuckDB's.
  const plainSet = new Set(plainRows.map((r) => JSON.stringify(r)));
  const resultsMatch =
    enclaveRows.length + enclave.groupsSuppressed === plainRows.length &&
    enclaveRows.every((r) => plainSet.has(JSON.stringify(r)));
  const get = (w: DataFile["which"]) => files.find((f) => f.which === w)?.rows ?? 0;
  return {
    rowsPerParty,
    rows: { purchases: get("purchases"), exposures: get("exposures") },
    csvMB: files.reduce((n, f) => n + f.bytes, 0) / 1e6,
    enclave: enclaveTimes,
    plain: plainTimes,
    ratio: enclave.totalS / plain.totalS,
    ratioWithEncrypt: (enclave.totalS + enclave.partnerEncryptS) / plain.totalS,
    resultsMatch,
  };
}
