/**
 * Loads one dataset's decrypted bytes into a DuckDB table named by the dataset id, typed exactly
 * as the contract declares, without the plaintext touching persistent storage: CSV flows through
 * a named pipe (bytes live only in kernel pipe buffers), Parquet (which needs seeking) through a
 * 0600 file on the engine's memory filesystem that is deleted as soon as it is read. The table is
 * built under a staging name in a transaction and renamed only when every check passed, so a
 * refused load leaves nothing behind. Choice and measurements: docs/INGEST.md.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { Column, Dataset } from "../../protocol/contract/types.js";
import { checkHeader } from "./csv-header.js";
import { quoteIdent, type SqlEngine, sqlString } from "./engine.js";
import { IngestError, IngestFailedError } from "./errors.js";

export interface IngestOptions {
  /** "refuse-all" (default): any bad row refuses the whole load. "reject": skip and count bad rows. */
  mode?: "refuse-all" | "reject";
  /**
   * How decrypted CSV reaches DuckDB. "file" (default): a 0600 file in the engine's in-memory
   * scratch directory, read by all DuckDB threads, deleted right after the load. "pipe": a named
   * pipe, so the plaintext never exists whole outside DuckDB, read by one thread (slower).
   */
  csvVia?: "file" | "pipe";
}

/** What the owner learns about its own load; counts only, no values. */
export interface QualityReport {
  dataset: string;
  rowsAccepted: number;
  rowsRejected: number;
  /** Fraction of NULLs per contract column (0 when the table is empty). */
  nullRate: Record<string, number>;
  identity: {
    column: string;
    /** Non-null identities that are not 64 lowercase hex characters (null when format is "any"). */
    invalidFormat: number | null;
    /** Non-null identity values repeating an earlier row's (rows minus distinct values). */
    duplicates: number;
  };
}

const TABLE_ID = /^[a-z][a-z0-9_]{0,63}$/;
const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const COLUMN_TYPES = new Set(["VARCHAR", "BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"]);

/** Names and types that reach SQL text (quoted) must be plain identifiers and known types. */
export function checkDatasetShape(dataset: Dataset): void {
  if (!TABLE_ID.test(dataset.id)) throw new UsageError("ingest: dataset id");
  if (dataset.columns.length === 0) throw new UsageError("ingest: dataset has no columns");
  const names = new Set<string>();
  for (const c of dataset.columns) {
    if (!COLUMN_NAME.test(c.name) || names.has(c.name.toLowerCase()) || !COLUMN_TYPES.has(c.type)) {
      throw new UsageError("ingest: columns must be distinct identifiers of a known type");
    }
    names.add(c.name.toLowerCase());
  }
  if (!dataset.columns.some((c) => c.name === dataset.identityColumn)) {
    throw new UsageError("ingest: identity column not declared");
  }
}

export async function ingestDataset(
  engine: SqlEngine,
  dataset: Dataset,
  source: Readable,
  options: IngestOptions = {},
): Promise<QualityReport> {
  checkDatasetShape(dataset);
  if (engine.datasets.has(dataset.id)) throw new UsageError("ingest: dataset already loaded");
  const staging = `__staging_${dataset.id}_${randomUUID().replaceAll("-", "")}`;
  const conn = await engine.connect();
  try {
    await conn.run("BEGIN TRANSACTION");
    try {
      const rejected =
        dataset.format === "csv"
          ? await loadCsv(engine, conn, dataset, staging, source, options)
          : await loadParquet(engine, conn, dataset, staging, source);
      const report = await qualityReport(conn, dataset, staging, rejected);
      await conn.run(`ALTER TABLE ${quoteIdent(staging)} RENAME TO ${quoteIdent(dataset.id)}`);
      await conn.run("COMMIT");
      engine.datasets.set(dataset.id, dataset);
      return report;
    } catch (e) {
      await conn.run("ROLLBACK").catch(() => undefined);
      throw isCleanroomError(e) ? e : new IngestFailedError("ingest: load failed", { cause: e });
    }
  } finally {
    conn.closeSync();
  }
}

function columnSpec(columns: Column[]): string {
  return `{${columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(", ")}}`;
}

async function loadCsv(
  engine: SqlEngine,
  conn: DuckDBConnection,
  dataset: Dataset,
  staging: string,
  source: Readable,
  options: IngestOptions,
): Promise<number> {
  const mode = options.mode ?? "refuse-all";
  const path = join(engine.scratchDir, `${staging}.csv`);
  const rejects = `${staging}_rejects`;
  const load = () =>
    conn.run(
      `CREATE TABLE ${quoteIdent(staging)} AS SELECT * FROM read_csv(${sqlString(path)}, ` +
        `header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', ` +
        `columns = ${columnSpec(dataset.columns)}, store_rejects = true, ` +
        `rejects_table = ${sqlString(rejects)}, rejects_scan = ${sqlString(`${rejects}_scan`)})`,
    );
  try {
    if ((options.csvVia ?? "file") === "file") {
      await writeScratch(path, checkHeader(source, dataset.columns));
      await load();
    } else {
      await loadThroughPipe(path, load, checkHeader(source, dataset.columns));
    }

    const first = await conn.runAndReadAll(
      `SELECT count(DISTINCT line)::BIGINT, min(line)::BIGINT, ` +
        `arg_min(column_name, line) FROM ${quoteIdent(rejects)}`,
    );
    const [count, line, column] = first.getRows()[0] ?? [];
    const rejected = Number(count ?? 0);
    await conn.run(`DROP TABLE ${quoteIdent(rejects)}`);
    await conn.run(`DROP TABLE ${quoteIdent(`${rejects}_scan`)}`);
    if (rejected > 0 && mode === "refuse-all") {
      const name = dataset.columns.find((c) => c.name === column)?.name;
      // The header is line 1, so data row n is line n + 1.
      throw new IngestError(
        name
          ? `ingest: row ${Number(line) - 1} column ${name} does not match its type`
          : "ingest: malformed row",
        { row: Number(line) - 1, ...(name ? { column: name } : {}) },
      );
    }
    return rejected;
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

/**
 * Writes the whole source to a new 0600 file, coalescing the 64 KiB decrypted chunks into large
 * writes (tmpfs copies are cheap; syscalls and stream plumbing per chunk are not). A source
 * failure (e.g. decryption) fails the load.
 */
async function writeScratch(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const handle = await open(path, "wx", 0o600);
  const buffer = Buffer.allocUnsafe(WRITE_BYTES);
  let used = 0;
  try {
    for await (const chunk of chunks) {
      if (used + chunk.length > buffer.length) {
        await handle.write(buffer, 0, used);
        used = 0;
      }
      if (chunk.length >= buffer.length) await handle.write(chunk);
      else {
        buffer.set(chunk, used);
        used += chunk.length;
      }
    }
    if (used) await handle.write(buffer, 0, used);
  } catch (e) {
    throw isCleanroomError(e) ? e : new IngestFailedError("ingest: source stream failed", { cause: e });
  } finally {
    await handle.close();
  }
}

const WRITE_BYTES = 4 << 20;

async function loadThroughPipe(
  fifo: string,
  load: () => Promise<unknown>,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const made = spawnSync("mkfifo", ["-m", "600", fifo]);
  if (made.status !== 0) throw new IngestFailedError("ingest: cannot create pipe");
  const feed = feedPipe(fifo, chunks);
  const [loaded, fed] = await Promise.allSettled([load(), feed.done]);
  if (loaded.status === "rejected") await feed.unblock();
  await feed.done.catch(() => undefined);
  // A header refusal or a source failure (e.g. decryption) truncates the pipe: it wins.
  if (fed.status === "rejected") throw fed.reason;
  if (loaded.status === "rejected") throw loaded.reason;
}

/**
 * Writes `chunks` into the pipe. Opening a pipe for writing blocks until a reader opens it; if
 * DuckDB fails before opening, `unblock` opens and closes the read end so the writer is freed
 * (and then fails with EPIPE).
 */
function feedPipe(
  fifo: string,
  chunks: AsyncIterable<Uint8Array>,
): {
  done: Promise<void>;
  unblock: () => Promise<void>;
} {
  let opened = false;
  const done = (async () => {
    const handle = await open(fifo, constants.O_WRONLY);
    opened = true;
    await pipeline(Readable.from(chunks), handle.createWriteStream());
  })();
  const unblock = async () => {
    if (opened) return;
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
    await reader?.close();
  };
  return { done, unblock };
}

/** Parquet column types accepted for each contract type (lossless reads). */
const PARQUET_TYPES: Record<Column["type"], string[]> = {
  VARCHAR: ["VARCHAR"],
  BIGINT: ["BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT"],
  INTEGER: ["INTEGER", "SMALLINT", "TINYINT", "USMALLINT", "UTINYINT"],
  DOUBLE: ["DOUBLE", "FLOAT"],
  BOOLEAN: ["BOOLEAN"],
  DATE: ["DATE"],
  TIMESTAMP: ["TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S"],
};

async function loadParquet(
  engine: SqlEngine,
  conn: DuckDBConnection,
  dataset: Dataset,
  staging: string,
  source: Readable,
): Promise<number> {
  const file = join(engine.scratchDir, `${staging}.parquet`);
  try {
    const handle = await open(file, "wx", 0o600);
    try {
      await pipeline(source, handle.createWriteStream());
    } catch (e) {
      throw new IngestFailedError("ingest: source stream failed", { cause: e });
    }
    const scan = `read_parquet(${sqlString(file)})`;
    const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${scan}`);
    const actual = described.getRows().map(([name, type]) => ({ name: String(name), type: String(type) }));
    dataset.columns.forEach((c, i) => {
      const found = actual[i];
      if (found?.name !== c.name || !PARQUET_TYPES[c.type].includes(found.type)) {
        throw new IngestError(`ingest: column ${c.name} missing or not of its declared type`, {
          column: c.name,
        });
      }
    });
    if (actual.length !== dataset.columns.length) throw new IngestError("ingest: unexpected extra column");
    const select = dataset.columns
      .map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`)
      .join(", ");
    await conn.run(`CREATE TABLE ${quoteIdent(staging)} AS SELECT ${select} FROM ${scan}`);
    return 0;
  } finally {
    await unlink(file).catch(() => undefined);
  }
}

async function qualityReport(
  conn: DuckDBConnection,
  dataset: Dataset,
  table: string,
  rejected: number,
): Promise<QualityReport> {
  const id = quoteIdent(dataset.identityColumn);
  const checkFormat = dataset.identityFormat === "sha256-hex";
  const exprs = [
    "count(*)",
    ...dataset.columns.map((c) => `count(${quoteIdent(c.name)})`),
    // Distinct 64-bit hashes: exact unless two identities collide (~n²/2⁶⁵), and several times
    // faster than hashing the strings into a distinct set.
    `count(DISTINCT hash(${id}))`,
    checkFormat
      ? `count(*) FILTER (WHERE ${id} IS NOT NULL AND NOT regexp_full_match(CAST(${id} AS VARCHAR), '[0-9a-f]{64}'))`
      : "0",
  ];
  const result = await conn.runAndReadAll(
    `SELECT ${exprs.map((e) => `CAST(${e} AS BIGINT)`).join(", ")} FROM ${quoteIdent(table)}`,
  );
  const values = (result.getRows()[0] ?? []).map((v) => Number(v));
  const rows = values[0] ?? 0;
  const nonNull = new Map(dataset.columns.map((c, i) => [c.name, values[i + 1] ?? 0]));
  const distinct = values[dataset.columns.length + 1] ?? 0;
  const invalid = values[dataset.columns.length + 2] ?? 0;
  return {
    dataset: dataset.id,
    rowsAccepted: rows,
    rowsRejected: rejected,
    nullRate: Object.fromEntries(
      dataset.columns.map((c) => [c.name, rows === 0 ? 0 : (rows - (nonNull.get(c.name) ?? 0)) / rows]),
    ),
    identity: {
      column: dataset.identityColumn,
      invalidFormat: checkFormat ? invalid : null,
      duplicates: (nonNull.get(dataset.identityColumn) ?? 0) - distinct,
    },
  };
}
