/**
 * Measurement 1, the privacy tax: the same two CSV files and the same approved join, once through
 * the clean room (age-encrypted by each owner to itself, as the SDK uploads; then, inside an
 * in-process Enclave: a grant carrying the file key, streaming decrypt into DuckDB, approved query
 * with its output policy, result encrypted to each recipient) and once in plain DuckDB (unlocked,
 * read_csv of the plaintext files, same SQL), both engines given the same thread count.
 */
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { decodeJwt } from "jose";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { speedSettings } from "../../enclave/sql/engine.js";
import { qualityReportSql } from "../../enclave/sql/ingest.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import type { ApprovedQuery, Dataset } from "../../protocol/contract/types.js";
import type { PartyId } from "../demo/flow.js";
import { useCaseQueries } from "../demo/usecases.js";
import type { DataFile } from "./data.js";
import { DATASET_OF } from "./data.js";
import { rssSampler } from "./memory.js";
import { admitParties, type Encrypted, encryptFile, fileKeyOf, grantBody, seal } from "./partner.js";
import { addThreadCpu, cpuSeconds, seconds, threadCpuSeconds } from "./timing.js";

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
  /** CPU seconds of this process (all threads) during the query. */
  queryCpuS: number;
  /** CPU seconds of this process (all threads) during decrypt + load: the work, whatever the wall time. */
  decryptLoadCpuS: number;
  /**
   * CPU seconds of Node's main thread during decrypt + load (receiving the ciphertext, cutting
   * batches and segments, driving DuckDB): serial work that no number of cores shortens. Null
   * where a thread's CPU time cannot be read.
   */
  decryptLoadMainCpuS: number | null;
  rowsLoaded: number;
  peakRssDeltaMB: number;
  /** The released rows, as the advertiser decrypted them. */
  rows: unknown[][];
}

export interface PlainRun {
  loadS: number;
  queryS: number;
  totalS: number;
  /** CPU seconds of this process (all threads) during the load, and during the query. */
  loadCpuS: number;
  queryCpuS: number;
  /**
   * CPU seconds of the owner's checks that the clean room's load runs (the quality report and the
   * identity-format rule, enclave/sql/ingest.ts `qualityReportSql`), run here over plain's loaded
   * tables after the query and not part of plain's times: what those checks cost on their own.
   */
  ownerChecksCpuS: number;
  rows: unknown[][];
  /**
   * The rows of `rows` whose group has at least k people in every table the query reads, computed
   * in plain SQL after the timed query (not timed): what the k rule should let through.
   */
  atLeastK: unknown[][];
}

export interface TaxResult {
  rowsPerParty: number;
  rows: Record<DataFile["which"], number>;
  csvMB: number;
  enclave: Omit<EnclaveRun, "rows">;
  plain: Omit<PlainRun, "rows" | "atLeastK">;
  /** Enclave total / plain total (decrypt + load + query). */
  ratio: number;
  /** The same, with the partners' encryption added to the clean-room side. */
  ratioWithEncrypt: number;
  /**
   * Whether the decrypted clean-room answer is exactly plain DuckDB's rows of at least k people in
   * every table (same rows, same values, none missing, none extra).
   */
  resultsMatch: boolean;
}

function query(): ApprovedQuery {
  return useCaseQueries.find((q) => q.id === QUERY_ID)!;
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The k rule for QUERY_ID, written independently of the enclave's rewrite: per segment, the
 * distinct people of each table the query reads (its aggregates read identity columns only, so
 * these are all the rule's counts, docs/QUERY-RULES.md "Output policy"). Under the LEFT JOIN the
 * purchases side counts matched people only, so a segment with fewer than k customers is held
 * back. The plain answer's rows are kept where every count is at least k.
 */
function atLeastKSql(q: ApprovedQuery): string {
  if (q.id !== "audience-overlap" || q.policy.kind !== "aggregation") {
    throw new Error(`bench: no plain k rule written for ${q.id}`);
  }
  const k = q.policy.minDistinctIdentities;
  return `WITH answer AS (${q.sql}),
people AS (
  SELECT e.segment AS segment,
         count(DISTINCT e.user_id) AS exposures_people,
         count(DISTINCT p.user_id) AS purchases_people
  FROM publisher_exposures e
  LEFT JOIN advertiser_purchases p ON p.user_id = e.user_id
  GROUP BY e.segment
)
SELECT answer.* FROM answer JOIN people ON answer.segment IS NOT DISTINCT FROM people.segment
WHERE people.exposures_people >= ${k} AND people.purchases_people >= ${k}`;
}

function readCsvSql(d: Dataset, path: string): string {
  const columns = d.columns.map((c) => `${sqlText(c.name)}: ${sqlText(c.type)}`).join(", ");
  return (
    `CREATE TABLE ${d.id} AS SELECT * FROM read_csv(${sqlText(path)}, header = true, ` +
    `auto_detect = false, delim = ',', quote = '"', escape = '"', columns = {${columns}})`
  );
}

export async function runPlain(files: DataFile[], s: EngineSettings): Promise<PlainRun> {
  // The engine settings that change speed are the enclave's, so the difference measured is the
  // privacy machinery, not configuration.
  const db = await DuckDBInstance.create(":memory:", speedSettings(s.memoryLimit, s.threads));
  const conn = await db.connect();
  try {
    const cpu0 = cpuSeconds();
    const load = await seconds(async () => {
      for (const f of files) await conn.run(readCsvSql(DATASET_OF[f.which], f.path));
    });
    const loadCpuS = cpuSeconds() - cpu0;
    let rows: unknown[][] = [];
    const cpu1 = cpuSeconds();
    const q = await seconds(async () => {
      rows = (await conn.runAndReadAll(query().sql)).getRowsJson() as unknown[][];
    });
    const queryCpuS = cpuSeconds() - cpu1;
    const atLeastK = (await conn.runAndReadAll(atLeastKSql(query()))).getRowsJson() as unknown[][];
    const cpu2 = cpuSeconds();
    for (const f of files)
      await conn.runAndReadAll(qualityReportSql(DATASET_OF[f.which], DATASET_OF[f.which].id));
    const ownerChecksCpuS = cpuSeconds() - cpu2;
    return { loadS: load, queryS: q, totalS: load + q, loadCpuS, queryCpuS, ownerChecksCpuS, rows, atLeastK };
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
    progress?.("partner: age-encrypting");
    const encrypted: (Encrypted & { f: DataFile; fileKey: string })[] = [];
    let partnerEncryptS = 0;
    for (const f of files) {
      const owner = parties.keys[OWNER[f.which]];
      partnerEncryptS += await seconds(async () => {
        const e = await encryptFile(f.path, owner.ageRecipient, join(workDir, `${f.which}.age`));
        encrypted.push({ f, ...e, fileKey: await fileKeyOf(e.path, owner.ageIdentity) });
      });
    }
    const sampler = rssSampler();
    let grantS = 0;
    let decryptLoadS = 0;
    let decryptLoadCpuS = 0;
    let decryptLoadMainCpuS: number | null = 0;
    let rowsLoaded = 0;
    for (const e of encrypted) {
      const party = OWNER[e.f.which];
      const body = await grantBody(parties, party, {
        dataset: e.f.dataset,
        ciphertextDigest: e.digest,
        fileKey: e.fileKey,
      });
      grantS += await seconds(async () => {
        await enclave.handleRequest(await seal(parties, enclave, party, "grant", body));
      });
      progress?.(`enclave: decrypt + load ${e.f.dataset}`);
      const cpu0 = cpuSeconds();
      const main0 = threadCpuSeconds();
      decryptLoadS += await seconds(async () => {
        // A file stream's chunks are fresh buffers, as a request body's are in the deployed server.
        const r = await enclave.ingest(
          e.f.dataset,
          e.digest,
          createReadStream(e.path, { highWaterMark: 1 << 20 }),
          { ownsInput: true },
        );
        rowsLoaded += (decodeJwt(r.response) as { body: { rows: number } }).body.rows;
      });
      decryptLoadCpuS += cpuSeconds() - cpu0;
      decryptLoadMainCpuS = addThreadCpu(decryptLoadMainCpuS, main0, threadCpuSeconds());
      rmSync(e.path, { force: true });
    }
    progress?.(`enclave: ${QUERY_ID}`);
    let reply: Awaited<ReturnType<Enclave["handleRequest"]>> | undefined;
    const body = { queryId: QUERY_ID, params: {}, resultFormat: "json" as const };
    const cpu1 = cpuSeconds();
    const queryS = await seconds(async () => {
      reply = await enclave.handleRequest(await seal(parties, enclave, "advertiser", "query", body));
    });
    const queryCpuS = cpuSeconds() - cpu1;
    const { peakMB, baseMB } = sampler.stop();
    const sealed = Buffer.from(reply!.results!["advertiser"]!, "base64");
    const plain = await decryptBytes(sealed, parties.keys.advertiser.ageIdentity);
    const result = JSON.parse(new TextDecoder().decode(plain)) as { rows: unknown[][] };
    return {
      partnerEncryptS,
      grantS,
      decryptLoadS,
      queryS,
      totalS: grantS + decryptLoadS + queryS,
      queryCpuS,
      decryptLoadCpuS,
      decryptLoadMainCpuS,
      rowsLoaded,
      peakRssDeltaMB: peakMB - baseMB,
      rows: result.rows,
    };
  } finally {
    enclave.close();
    rmSync(simDir, { recursive: true, force: true });
  }
}

/** The run with the smallest `key`. */
function fastest<T>(runs: T[], key: (r: T) => number): T {
  return runs.reduce((a, b) => (key(b) < key(a) ? b : a));
}

/**
 * Whether a release is exactly plain DuckDB's groups of at least k people per table: every
 * released row is one of plain's, with the same values, and none of them is missing (each round
 * is a fresh enclave, so the differencing guard has no earlier release to hold rows back for).
 */
function releaseMatches(released: unknown[][], plain: PlainRun): boolean {
  const sorted = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();
  const plainSet = new Set(sorted(plain.rows));
  const mine = sorted(released);
  return (
    mine.every((r) => plainSet.has(r)) && JSON.stringify(mine) === JSON.stringify(sorted(plain.atLeastK))
  );
}

/**
 * Plain, then the clean room, each with the whole machine to itself; `rounds` times, keeping each
 * side's fastest run of each phase (load, query), with that run's CPU and memory figures. Single
 * runs move by ±20 % on a shared machine, and on a VM whose host takes back free memory a phase
 * that first touches such memory pays for it in system time (docs/PERFORMANCE.md, "Noise"): the
 * fastest of each phase is the figure least moved by either, on both sides alike.
 */
export async function benchPrivacyTax(
  files: DataFile[],
  rowsPerParty: number,
  s: EngineSettings,
  workDir: string,
  progress?: (stage: string) => void,
  rounds = 2,
): Promise<TaxResult> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError("bench: rounds must be at least 1");
  const plains: PlainRun[] = [];
  const enclaves: EnclaveRun[] = [];
  for (let r = 1; r <= rounds; r++) {
    progress?.(`round ${r}/${rounds}: plain DuckDB: read_csv + query`);
    plains.push(await runPlain(files, s));
    enclaves.push(await runEnclave(files, s, workDir, progress));
  }
  const load = fastest(plains, (p) => p.loadS);
  const plainQuery = fastest(plains, (p) => p.queryS);
  const plain = {
    loadS: load.loadS,
    queryS: plainQuery.queryS,
    totalS: load.loadS + plainQuery.queryS,
    loadCpuS: load.loadCpuS,
    queryCpuS: plainQuery.queryCpuS,
    ownerChecksCpuS: fastest(plains, (p) => p.ownerChecksCpuS).ownerChecksCpuS,
  };
  const ingest = fastest(enclaves, (e) => e.decryptLoadS);
  const grantS = fastest(enclaves, (e) => e.grantS).grantS;
  const enclaveQuery = fastest(enclaves, (e) => e.queryS);
  const enclave: TaxResult["enclave"] = {
    partnerEncryptS: fastest(enclaves, (e) => e.partnerEncryptS).partnerEncryptS,
    grantS,
    decryptLoadS: ingest.decryptLoadS,
    queryS: enclaveQuery.queryS,
    totalS: grantS + ingest.decryptLoadS + enclaveQuery.queryS,
    queryCpuS: enclaveQuery.queryCpuS,
    decryptLoadCpuS: ingest.decryptLoadCpuS,
    decryptLoadMainCpuS: ingest.decryptLoadMainCpuS,
    rowsLoaded: ingest.rowsLoaded,
    peakRssDeltaMB: Math.max(...enclaves.map((e) => e.peakRssDeltaMB)),
  };
  // Every round's release must be right, not only the fastest one's; plain's answer is the same
  // in every round (same files, same SQL).
  const resultsMatch = enclaves.every((e) => releaseMatches(e.rows, plains[0]!));
  const get = (w: DataFile["which"]) => files.find((f) => f.which === w)?.rows ?? 0;
  return {
    rowsPerParty,
    rows: { purchases: get("purchases"), exposures: get("exposures") },
    csvMB: files.reduce((n, f) => n + f.bytes, 0) / 1e6,
    enclave,
    plain,
    ratio: enclave.totalS / plain.totalS,
    ratioWithEncrypt: (enclave.totalS + enclave.partnerEncryptS) / plain.totalS,
    resultsMatch,
  };
}
