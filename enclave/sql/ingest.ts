/**
 * Loads one dataset's decrypted bytes into a DuckDB table named by the dataset id, typed exactly
 * as the contract declares, without the plaintext touching persistent storage: CSV in
 * record-aligned segments, each in a 0600 file on the engine's memory filesystem parsed while the
 * next is decrypted (segment-files.ts), all deleted when the load ends; Parquet (which needs
 * seeking) as one such file. The table is built under a staging name and renamed only when every
 * check passed (dropped on any failure), so a refused load leaves nothing behind. Rows without an
 * identity (NULL or '') are dropped and counted; a "sha256-hex" dataset with any other identity
 * format is refused. Choice and measurements: docs/INGEST.md.
 */
import { randomUUID } from "node:crypto";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { Column, Dataset } from "../../protocol/contract/types.js";
import { checkHeader } from "./csv-header.js";
import { csvSegments } from "./csv-segments.js";
import { quoteIdent, type SqlEngine, sqlString } from "./engine.js";
import { IdentityFormatError, IngestError, IngestFailedError } from "./errors.js";
import { SegmentFiles } from "./segment-files.js";

export interface IngestOptions {
  /** "refuse-all" (default): any bad row refuses the whole load. "reject": skip and count bad rows. */
  mode?: "refuse-all" | "reject";
  /**
   * CSV is loaded in record-aligned segments of about this many bytes, each a 0600 file in the
   * engine's in-memory scratch directory parsed on all DuckDB threads while the next is being
   * decrypted; at most two exist at once. Default 64 MiB.
   */
  segmentBytes?: number;
}

/** What the owner learns about its own load; counts only, no values. */
export interface QualityReport {
  dataset: string;
  /** Rows in the loaded table. */
  rowsAccepted: number;
  rowsRejected: number;
  /** Rows dropped because their identity is NULL or the empty string (not in the table). */
  droppedNullIdentity: number;
  /** Fraction of NULLs per contract column among the loaded rows (0 when the table is empty). */
  nullRate: Record<string, number>;
  identity: {
    column: string;
    /**
     * Identities that are not 64 lowercase hex characters when the format is "sha256-hex": always
     * 0 in a report, since any other count refuses the load (IdentityFormatError); null otherwise.
     */
    invalidFormat: number | null;
    /** Loaded rows repeating an earlier row's identity (rows minus distinct identities). */
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
    try {
      const rejected =
        dataset.format === "csv"
          ? await loadCsv(engine, conn, dataset, staging, source, options)
          : await loadParquet(engine, conn, dataset, staging, source);
      const report = await qualityReport(conn, dataset, staging, rejected);
      const invalid = report.identity.invalidFormat ?? 0;
      if (invalid > 0) throw new IdentityFormatError(dataset.id, dataset.identityColumn, invalid);
      if (report.droppedNullIdentity > 0) {
        await conn.run(`DELETE FROM ${quoteIdent(staging)} WHERE ${missingIdentity(dataset)}`);
        await engine.compact(conn);
      }
      await conn.run(`ALTER TABLE ${quoteIdent(staging)} RENAME TO ${quoteIdent(dataset.id)}`);
      engine.datasets.set(dataset.id, dataset);
      return report;
    } catch (e) {
      await conn.run(`DROP TABLE IF EXISTS ${quoteIdent(staging)}`).catch(() => undefined);
      throw isCleanroomError(e) ? e : new IngestFailedError("ingest: load failed", { cause: e });
    }
  } finally {
    conn.closeSync();
  }
}

/** An empty table `name` with exactly the contract's columns and types (names already checked). */
export async function createTypedTable(
  conn: DuckDBConnection,
  name: string,
  columns: Column[],
): Promise<void> {
  const ddl = columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(", ");
  await conn.run(`CREATE TABLE ${quoteIdent(name)} (${ddl})`);
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
  const refuseAll = (options.mode ?? "refuse-all") === "refuse-all";
  await createTypedTable(conn, staging, dataset.columns);
  let rowsBefore = 0;
  let rejected = 0;
  const files = new SegmentFiles(engine.scratchDir, staging);
  const loadSegment = async (path: string, first: boolean): Promise<void> => {
    try {
      const rejects = `${staging}_rejects`;
      const inserted = await conn.run(
        `INSERT INTO ${quoteIdent(staging)} SELECT * FROM read_csv(${sqlString(path)}, ` +
          `header = ${first}, auto_detect = false, delim = ',', quote = '"', escape = '"', ` +
          `columns = ${columnSpec(dataset.columns)}, store_rejects = true, ` +
          `rejects_table = ${sqlString(rejects)}, rejects_scan = ${sqlString(`${rejects}_scan`)})`,
      );
      const bad = await takeRejects(conn, rejects);
      if (bad.lines > 0 && refuseAll) {
        const name = dataset.columns.find((c) => c.name === bad.column)?.name;
        // Line 1 of the first segment is the header; data row n is line n + 1 there.
        const row = rowsBefore + bad.firstLine - (first ? 1 : 0);
        throw new IngestError(
          name ? `ingest: row ${row} column ${name} does not match its type` : "ingest: malformed row",
          { row, ...(name ? { column: name } : {}) },
        );
      }
      await engine.compact(conn);
      rowsBefore += inserted.rowsChanged + bad.lines;
      rejected += bad.lines;
    } finally {
      files.release(path);
    }
  };

  // Segment n + 1 is decrypted and written while DuckDB parses segment n, so at most two
  // segments exist in the scratch directory. A load failure is reported only after the whole
  // source has been read, so a swapped ciphertext (digest checked at its end, load.ts) is
  // reported as such and never as facts about its rows.
  let loading: Promise<void> | undefined;
  let failure: unknown;
  let index = 0;
  try {
    for await (const parts of csvSegments(
      sourceFailures(checkHeader(source, dataset.columns)),
      segmentBytes(options),
    )) {
      if (failure !== undefined) continue;
      const path = await files.write(index, parts);
      failure = loading && (await failureOf(loading));
      if (failure !== undefined) continue;
      loading = loadSegment(path, index === 0);
      loading.catch(() => undefined); // awaited below; this only marks it handled meanwhile
      index++;
    }
    failure ??= loading && (await failureOf(loading));
  } catch (e) {
    if (loading) await failureOf(loading);
    throw e;
  } finally {
    await files.removeAll();
  }
  if (failure !== undefined) throw failure;
  return rejected;
}

const SEGMENT_BYTES = 64 << 20;

function segmentBytes(options: IngestOptions): number {
  const n = options.segmentBytes ?? SEGMENT_BYTES;
  if (!Number.isInteger(n) || n < 1) throw new UsageError("ingest: segmentBytes");
  return n;
}

async function failureOf(p: Promise<void>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e;
  }
}

/** Rejected lines of the last read_csv (first line and its column), then drops its reject tables. */
async function takeRejects(
  conn: DuckDBConnection,
  rejects: string,
): Promise<{ lines: number; firstLine: number; column: unknown }> {
  const r = await conn.runAndReadAll(
    `SELECT count(DISTINCT line)::BIGINT, min(line)::BIGINT, ` +
      `arg_min(column_name, line) FROM ${quoteIdent(rejects)}`,
  );
  const [lines, firstLine, column] = r.getRows()[0] ?? [];
  await conn.run(`DROP TABLE ${quoteIdent(rejects)}`);
  await conn.run(`DROP TABLE ${quoteIdent(`${rejects}_scan`)}`);
  return { lines: Number(lines ?? 0), firstLine: Number(firstLine ?? 0), column };
}

/** A failing source (e.g. decryption) fails the load as such; header refusals pass unchanged. */
async function* sourceFailures(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } catch (e) {
    throw isCleanroomError(e) ? e : new IngestFailedError("ingest: source stream failed", { cause: e });
  }
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
    await engine.compact(conn);
    return 0;
  } finally {
    await unlink(file).catch(() => undefined);
  }
}

/** Rows without a person: identity NULL, or the empty string for a text identity. */
function missingIdentity(dataset: Dataset): string {
  const id = quoteIdent(dataset.identityColumn);
  const type = dataset.columns.find((c) => c.name === dataset.identityColumn)?.type;
  return type === "VARCHAR" ? `(${id} IS NULL OR ${id} = '')` : `(${id} IS NULL)`;
}

/**
 * One parallel scan of the staged table: counts over the rows that will be kept (identity present),
 * the rows to drop (identity missing) and, for "sha256-hex", the kept identities of another format.
 */
async function qualityReport(
  conn: DuckDBConnection,
  dataset: Dataset,
  table: string,
  rejected: number,
): Promise<QualityReport> {
  const id = quoteIdent(dataset.identityColumn);
  const checkFormat = dataset.identityFormat === "sha256-hex";
  const keep = `FILTER (WHERE NOT ${missingIdentity(dataset)})`;
  const exprs = [
    `count(*) ${keep}`,
    ...dataset.columns.map((c) => `count(${quoteIdent(c.name)}) ${keep}`),
    // Distinct 64-bit hashes: exact unless two identities collide (~n²/2⁶⁵), and several times
    // faster than hashing the strings into a distinct set.
    `count(DISTINCT hash(${id})) ${keep}`,
    checkFormat
      ? `count(*) FILTER (WHERE NOT ${missingIdentity(dataset)} AND NOT regexp_full_match(CAST(${id} AS VARCHAR), '[0-9a-f]{64}'))`
      : "0",
    `count(*) FILTER (WHERE ${missingIdentity(dataset)})`,
  ];
  const result = await conn.runAndReadAll(
    `SELECT ${exprs.map((e) => `CAST(${e} AS BIGINT)`).join(", ")} FROM ${quoteIdent(table)}`,
  );
  const values = (result.getRows()[0] ?? []).map((v) => Number(v));
  const rows = values[0] ?? 0;
  const nonNull = new Map(dataset.columns.map((c, i) => [c.name, values[i + 1] ?? 0]));
  const distinct = values[dataset.columns.length + 1] ?? 0;
  const invalid = values[dataset.columns.length + 2] ?? 0;
  const dropped = values[dataset.columns.length + 3] ?? 0;
  return {
    dataset: dataset.id,
    rowsAccepted: rows,
    rowsRejected: rejected,
    droppedNullIdentity: dropped,
    nullRate: Object.fromEntries(
      dataset.columns.map((c) => [c.name, rows === 0 ? 0 : (rows - (nonNull.get(c.name) ?? 0)) / rows]),
    ),
    identity: {
      column: dataset.identityColumn,
      invalidFormat: checkFormat ? invalid : null,
      duplicates: rows - distinct,
    },
  };
}
