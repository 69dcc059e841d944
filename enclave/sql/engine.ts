/**
 * A locked-down in-memory DuckDB: no file, network or extension access except one private
 * directory on a memory-backed filesystem (for ingest pipes), and configuration frozen so no
 * later statement can undo any of it. See docs/INGEST.md for the spill-encryption finding.
 */
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { UsageError } from "../../attestation/errors.js";
import type { Dataset } from "../../protocol/contract/types.js";
import { type DatasetVersion, TableLock } from "./versions.js";

export interface EngineOptions {
  /** DuckDB memory_limit, e.g. "2GB". Default "1GB". */
  memoryLimit?: string;
  /** DuckDB worker threads. Default: the CPUs this process may run on (os.availableParallelism). */
  threads?: number;
  /** Memory-backed filesystem for the private scratch directory. Default "/dev/shm". */
  scratchRoot?: string;
  /** Let operators spill to <scratch>/spill (memory-backed) instead of failing at memoryLimit. */
  spill?: boolean;
  /** Interrupt a query after this many milliseconds. Default 30 000. */
  queryTimeoutMs?: number;
  /** Refuse results with more rows than this (counted after suppression). Default 100 000. */
  maxResultRows?: number;
  /**
   * Keep tables in DuckDB's compressed in-memory storage (dictionary, FSST, bit-packing): several
   * times less memory for typical data, for a compression pass after each loaded segment
   * (docs/INGEST.md has the figures). Default false.
   */
  compress?: boolean;
}

/** Filesystem magic numbers (statfs f_type) of memory-backed filesystems. */
const MEMORY_FS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);
const MEMORY_LIMIT = /^\d{1,6}(\.\d{1,3})?\s?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/;
const SAFE_PATH = /^\/[A-Za-z0-9/_.-]+$/;

export class SqlEngine {
  /** Datasets loaded so far, by id (registered by ingest). */
  readonly datasets = new Map<string, Dataset>();
  /** Each loaded dataset's lineage in this instance, oldest first (versions.ts). */
  readonly versions = new Map<string, DatasetVersion[]>();
  /** Query runs hold it shared, a version switch exclusively (versions.ts). */
  readonly tables = new TableLock();
  /** Per-engine cache owned by run.ts (prepared plans by query id). */
  readonly plans = new Map<string, unknown>();
  #closed = false;

  constructor(
    readonly instance: DuckDBInstance,
    /** Connection for engine-internal statements (parsing, catalog checks). */
    readonly connection: DuckDBConnection,
    /** Private 0700 directory on a memory filesystem: the only path DuckDB may open. */
    readonly scratchDir: string,
    readonly queryTimeoutMs: number,
    readonly maxResultRows: number,
    /** Whether tables live in the compressed database (see EngineOptions.compress). */
    readonly compress: boolean,
    /** DuckDB's worker threads (ingest sizes its segments and decrypt workers by it). */
    readonly threads: number,
  ) {}

  /** A fresh connection, so an interrupt or transaction stays local to one task. */
  async connect(): Promise<DuckDBConnection> {
    const conn = await this.instance.connect();
    if (this.compress) await useTables(conn);
    return conn;
  }

  /**
   * Compresses the rows appended since the last checkpoint (a no-op unless `compress`). DuckDB
   * refuses a checkpoint while another connection is writing, i.e. during a concurrent load; that
   * returns false, and the other load's own later checkpoint compresses these rows as well.
   */
  async compact(conn: DuckDBConnection): Promise<boolean> {
    if (!this.compress) return true;
    try {
      await conn.run(`CHECKPOINT ${COMPRESSED_DB}`);
      return true;
    } catch (e) {
      if (/other write transactions/i.test(e instanceof Error ? e.message : "")) return false;
      throw e;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.plans.clear();
    this.connection.closeSync();
    this.instance.closeSync();
    rmSync(this.scratchDir, { recursive: true, force: true });
  }
}

/** The database that holds the tables when `compress` is on (`USE` is per connection). */
const COMPRESSED_DB = "tables";

async function useTables(conn: DuckDBConnection): Promise<void> {
  await conn.run(`USE ${COMPRESSED_DB}`);
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * The settings that change how fast DuckDB loads and queries, apart from the lockdown: the bench's
 * plain baseline opens its engine with the same ones, so the ratio it reports is the privacy
 * machinery and not configuration.
 */
export function speedSettings(memoryLimit: string, threads: number): Record<string, string> {
  return {
    // Tables are sets: keeping rows in file order costs loads ~30 % of their CPU and memory.
    preserve_insertion_order: "false",
    memory_limit: memoryLimit,
    threads: String(threads),
    // By default the allocator hands memory back to the kernel after any statement that peaked
    // above 128 MiB, so every loaded segment maps and zeroes its buffers afresh: about half the
    // load's system time at 10M rows. Memory stays bounded by memory_limit either way.
    allocator_flush_threshold: memoryLimit,
  };
}

export async function openEngine(options: EngineOptions = {}): Promise<SqlEngine> {
  const memoryLimit = options.memoryLimit ?? "1GB";
  const threads = options.threads ?? Math.min(1024, availableParallelism());
  const root = options.scratchRoot ?? "/dev/shm";
  if (!MEMORY_LIMIT.test(memoryLimit)) throw new UsageError("engine: memoryLimit not understood");
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new UsageError("engine: threads");
  if (!SAFE_PATH.test(root)) throw new UsageError("engine: scratchRoot must be a plain absolute path");
  // Plaintext passes through the scratch directory, so it must never be a disk.
  if (!MEMORY_FS.has(Number(statfsSync(root).type))) {
    throw new UsageError("engine: scratchRoot is not a memory-backed filesystem");
  }
  const scratchDir = mkdtempSync(join(root, "cleanroom-sql-"));
  const spillDir = join(scratchDir, "spill");
  try {
    const instance = await DuckDBInstance.create(":memory:", {
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
      allow_community_extensions: "false",
      allow_unsigned_extensions: "false",
      allow_persistent_secrets: "false",
      // Ingest reads each scratch file once; caching their contents would only hold plaintext.
      enable_external_file_cache: "false",
      ...speedSettings(memoryLimit, threads),
      // Empty disables spilling entirely; otherwise spill stays in the memory-backed directory.
      temp_directory: options.spill ? spillDir : "",
      // A scalar subquery with several rows answers one of them instead of failing, on every
      // connection: whether a run fails must not depend on the data.
      scalar_subquery_error_on_multiple_rows: "false",
    });
    const connection = await instance.connect();
    if (options.compress) {
      await connection.run(`ATTACH ':memory:' AS ${COMPRESSED_DB} (COMPRESS)`);
      await useTables(connection);
    }
    // allowed_directories cannot be set at creation, and must precede the access switch-off.
    await connection.run(`SET allowed_directories = [${sqlString(`${scratchDir}/`)}]`);
    await connection.run("SET enable_external_access = false");
    await connection.run("SET lock_configuration = true");
    return new SqlEngine(
      instance,
      connection,
      scratchDir,
      options.queryTimeoutMs ?? 30_000,
      options.maxResultRows ?? 100_000,
      options.compress ?? false,
      threads,
    );
  } catch (e) {
    rmSync(scratchDir, { recursive: true, force: true });
    throw e;
  }
}

/** Double-quoted SQL identifier; names reaching here are already checked against the contract. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export { sqlString };
