/**
 * Loads one dataset's decrypted bytes into a DuckDB table named by the dataset id, typed exactly
 * as the contract declares, without the plaintext touching persistent storage: CSV in
 * record-aligned segments, each in a 0600 file on the engine's memory filesystem, several parsed
 * at once on their own connections while the next is decrypted (segment-files.ts), all deleted
 * when the load ends; Parquet (which needs seeking) as one such file. The table is built under a
 * staging name and renamed only when every check passed (dropped on any failure), so a refused
 * load leaves nothing behind. Rows without an identity (NULL or '') are dropped and counted; a
 * "sha256-hex" dataset with identities of another format is refused beyond the contract's share
 * of them (within it they are dropped and counted), and a load that keeps no row is refused.
 * Choice and measurements: docs/INGEST.md.
 */
import { randomUUID } from "node:crypto";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import {
  type Column,
  type Dataset,
  DEFAULT_MAX_INVALID_IDENTITY_SHARE,
} from "../../protocol/contract/types.js";
import { checkHeader } from "./csv-header.js";
import { type CsvPiece, csvSegments } from "./csv-segments.js";
import { quoteIdent, type SqlEngine, sqlString } from "./engine.js";
import { EmptyLoadError, IdentityFormatError, IngestError, IngestFailedError } from "./errors.js";
import { SegmentFiles } from "./segment-files.js";
import { commitStaged, type DatasetVersion, type LoadMode } from "./versions.js";

export interface IngestOptions {
  /** "refuse-all" (default): any bad row refuses the whole load. "reject": skip and count bad rows. */
  mode?: "refuse-all" | "reject";
  /**
   * CSV is loaded in record-aligned segments of about this many bytes, each a 0600 file in the
   * engine's in-memory scratch directory. Default: 8 MiB per DuckDB thread (DuckDB gives each
   * thread about 8 MB of one file), at least 64 MiB and at most 256 MiB.
   */
  segmentBytes?: number;
  /**
   * Segments parsed at once, each on its own connection appending to the staging table; at most
   * this many segment files exist at a time. Default 2 (1 on a 1-thread engine, whose statements
   * would otherwise run on two threads): the DuckDB bindings run each statement on one of libuv's
   * 4 pool threads, which the scratch writes also need, and a statement's own thread works beside
   * DuckDB's.
   */
  concurrentSegments?: number;
  /**
   * How the checked rows join the dataset's table (versions.ts): "new" (default; the dataset must
   * not be loaded), "replace" or "append".
   */
  into?: LoadMode;
  /** The age file the rows came from, for the dataset's lineage (engine.versions). */
  ciphertextDigest?: string;
  /** Called with the rows each loaded CSV segment added (load progress). */
  onRows?: (added: number) => void;
  /**
   * Called with the new version once the rows are the dataset's, before any query can read them
   * (under the engine's table lock): the enclave writes the load's audit entry there.
   */
  onCommit?: (version: DatasetVersion) => Promise<void>;
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
     * Identities that are not 64 lowercase hex characters when the format is "sha256-hex" (rows
     * dropped, within the contract's maxInvalidIdentityShare: more refuses the load with
     * IdentityFormatError); null otherwise.
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

/** A decrypted byte stream: a Readable, or pieces (some with their CSV quote count, csv-segments.ts). */
export type IngestSource = Readable | AsyncIterable<Uint8Array | CsvPiece>;

export async function ingestDataset(
  engine: SqlEngine,
  dataset: Dataset,
  source: IngestSource,
  options: IngestOptions = {},
): Promise<QualityReport> {
  checkDatasetShape(dataset);
  const into = options.into ?? "new";
  if (into === "new" ? engine.datasets.has(dataset.id) : !engine.datasets.has(dataset.id)) {
    throw new UsageError(into === "new" ? "ingest: dataset already loaded" : "ingest: dataset not loaded");
  }
  const staging = `__staging_${dataset.id}_${randomUUID().replaceAll("-", "")}`;
  const conn = await engine.connect();
  try {
    try {
      const rejected =
        dataset.format === "csv"
          ? await loadCsv(engine, conn, dataset, staging, source, options)
          : await loadParquet(engine, conn, dataset, staging, source);
      let report = await qualityReport(conn, dataset, staging, rejected);
      const invalid = report.identity.invalidFormat ?? 0;
      // Past the contract's share, wrong-format identities refuse the load; within it they are
      // dropped like missing ones (and the report recounted without them).
      const limit = dataset.maxInvalidIdentityShare ?? DEFAULT_MAX_INVALID_IDENTITY_SHARE;
      if (invalid > 0 && invalid > limit * report.rowsAccepted) {
        throw new IdentityFormatError(dataset.id, dataset.identityColumn, invalid);
      }
      if (report.droppedNullIdentity > 0 || invalid > 0) {
        await conn.run(
          `DELETE FROM ${quoteIdent(staging)} WHERE ${missingIdentity(dataset)} OR ${wrongIdentityFormat(dataset)}`,
        );
        await engine.compact(conn);
      }
      if (invalid > 0) {
        const kept = await qualityReport(conn, dataset, staging, rejected);
        report = {
          ...kept,
          droppedNullIdentity: report.droppedNullIdentity,
          identity: { ...kept.identity, invalidFormat: invalid },
        };
      }
      // Nothing to load is refused, so a wrong file never replaces a dataset with nothing.
      if (report.rowsAccepted === 0) throw new EmptyLoadError(dataset.id);
      await commitStaged(engine, conn, {
        dataset,
        staging,
        mode: into,
        rows: report.rowsAccepted,
        ciphertextDigest: options.ciphertextDigest ?? null,
        ...(options.onCommit ? { onCommit: options.onCommit } : {}),
      });
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

/** What one loaded segment added: rows read (inserted + rejected) and its rejected lines. */
interface SegmentResult {
  rows: number;
  bad: Rejects;
}

async function loadCsv(
  engine: SqlEngine,
  conn: DuckDBConnection,
  dataset: Dataset,
  staging: string,
  source: IngestSource,
  options: IngestOptions,
): Promise<number> {
  const refuseAll = (options.mode ?? "refuse-all") === "refuse-all";
  const target = segmentBytes(options, engine.threads);
  const lanes = concurrentSegments(options, engine.threads);
  await createTypedTable(conn, staging, dataset.columns);
  const files = new SegmentFiles(engine.scratchDir, staging);
  const rejects = `${staging}_rejects`;
  const results: SegmentResult[] = [];
  // The file's line ending, from its header, in read_csv's spelling. Left to detect it, DuckDB
  // guesses per segment from the first line break it sees, and a segment that starts with a quoted
  // CR guesses CR and fails; a wrong guess the other way can read a segment as no rows at all.
  let newLine = "\\n";
  const free: DuckDBConnection[] = [];
  const running = new Set<Promise<void>>();
  let failure: unknown;
  let refused = false;

  // Each segment is appended by its own statement on a free connection, concurrently with the
  // others (appends to one table do not conflict); a segment's row numbers are known once every
  // earlier segment is loaded, which is why rejects are turned into errors only at the end.
  const loadSegment = async (lane: DuckDBConnection, path: string, index: number): Promise<void> => {
    try {
      const inserted = await lane
        .run(
          `INSERT INTO ${quoteIdent(staging)} SELECT * FROM read_csv(${sqlString(path)}, ` +
            `header = ${index === 0}, auto_detect = false, delim = ',', quote = '"', escape = '"', ` +
            `new_line = ${sqlString(newLine)}, ` +
            `columns = ${columnSpec(dataset.columns)}, store_rejects = true, ` +
            `rejects_table = ${sqlString(rejects)}, rejects_scan = ${sqlString(`${rejects}_scan`)})`,
        )
        .catch((e: unknown) => {
          // The parser's dead end: a line ending other than the header's, or a quote never closed.
          if (e instanceof Error && e.message.includes("state machine reached an invalid state")) {
            throw new IngestError(
              "ingest: malformed CSV: end every line as the header line ends (LF or CRLF) and close every quoted field",
            );
          }
          throw e;
        });
      const bad = await takeRejects(lane, rejects);
      results[index] = { rows: inserted.rowsChanged + bad.lines, bad };
      options.onRows?.(inserted.rowsChanged);
      if (bad.lines > 0 && refuseAll) refused = true;
      await engine.compact(lane);
    } finally {
      files.release(path);
      free.push(lane);
    }
  };

  // Segments are written only when a connection is free to parse them, so at most `lanes` files
  // exist; the next segment's bytes are decrypted meanwhile. After a refusal or a failure no
  // segment is loaded, but the source is still read to its end: a swapped ciphertext (its digest
  // is checked at the end, load.ts) or a truncated one is reported as such, never as facts about
  // its rows.
  let index = 0;
  try {
    for (let i = 0; i < lanes; i++) free.push(await engine.connect());
    for await (const segment of csvSegments(
      sourceFailures(
        checkHeader(pieces(source), dataset.columns, (crlf) => {
          newLine = crlf ? "\\r\\n" : "\\n";
        }),
      ),
      target,
    )) {
      while (free.length === 0) await Promise.race(running);
      if (refused || failure !== undefined) {
        for (const p of segment.done) p.release?.();
        continue;
      }
      const path = await files.write(index, segment.parts);
      // Written out: the decrypted buffers these bytes came from can take later batches.
      for (const p of segment.done) p.release?.();
      const loading = loadSegment(free.pop()!, path, index).catch((e: unknown) => {
        failure ??= e;
      });
      running.add(loading);
      void loading.finally(() => running.delete(loading));
      index++;
    }
  } finally {
    await Promise.all(running);
    await files.removeAll();
    for (const lane of free) lane.closeSync();
  }
  if (failure !== undefined) throw failure;
  // Another connection's load may have held off the last compaction; this one runs alone.
  await engine.compact(conn);
  const first = results.findIndex((r) => r.bad.lines > 0);
  if (refuseAll && first >= 0) {
    const bad = results[first]!.bad;
    const before = results.slice(0, first).reduce((n, r) => n + r.rows, 0);
    const name = dataset.columns.find((c) => c.name === bad.column)?.name;
    // Line 1 of the first segment is the header; data row n is line n + 1 there.
    const row = before + bad.firstLine - (first === 0 ? 1 : 0);
    throw new IngestError(
      name ? `ingest: row ${row} column ${name} does not match its type` : "ingest: malformed row",
      { row, ...(name ? { column: name } : {}) },
    );
  }
  return results.reduce((n, r) => n + r.bad.lines, 0);
}

/** The bytes of `source`'s pieces. */
async function* bytes(source: IngestSource): AsyncGenerator<Uint8Array | string> {
  for await (const p of pieces(source)) yield typeof p === "string" || p instanceof Uint8Array ? p : p.bytes;
}

/** Pieces of `source` (a Readable in string mode gives strings). */
async function* pieces(source: IngestSource): AsyncGenerator<Uint8Array | string | CsvPiece> {
  yield* source as AsyncIterable<Uint8Array | string | CsvPiece>;
}

const SEGMENT_MIN = 64 << 20;
const SEGMENT_MAX = 256 << 20;
const BYTES_PER_THREAD = 8 << 20;

function segmentBytes(options: IngestOptions, threads: number): number {
  const n = options.segmentBytes ?? Math.min(SEGMENT_MAX, Math.max(SEGMENT_MIN, threads * BYTES_PER_THREAD));
  if (!Number.isInteger(n) || n < 1) throw new UsageError("ingest: segmentBytes");
  return n;
}

function concurrentSegments(options: IngestOptions, threads: number): number {
  const n = options.concurrentSegments ?? Math.min(2, threads);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError("ingest: concurrentSegments");
  return n;
}

interface Rejects {
  lines: number;
  firstLine: number;
  column: unknown;
}

/**
 * Rejected lines of the connection's last read_csv (first line and its column), then drops its
 * reject tables: they hold the raw lines, so they never outlive the segment.
 */
async function takeRejects(conn: DuckDBConnection, rejects: string): Promise<Rejects> {
  const r = await conn.runAndReadAll(
    `SELECT count(DISTINCT line)::BIGINT, min(line)::BIGINT, ` +
      `arg_min(column_name, line) FROM ${quoteIdent(rejects)}`,
  );
  const [lines, firstLine, column] = r.getRows()[0] ?? [];
  await conn.run(`DROP TABLE ${quoteIdent(rejects)}; DROP TABLE ${quoteIdent(`${rejects}_scan`)}`);
  return { lines: Number(lines ?? 0), firstLine: Number(firstLine ?? 0), column };
}

/** A failing source (e.g. decryption) fails the load as such; header refusals pass unchanged. */
async function* sourceFailures<T>(chunks: AsyncIterable<T>): AsyncGenerator<T> {
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
  source: IngestSource,
): Promise<number> {
  const file = join(engine.scratchDir, `${staging}.parquet`);
  try {
    const handle = await open(file, "wx", 0o600);
    try {
      await pipeline(bytes(source), handle.createWriteStream());
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

const HEX_DIGITS = "'0123456789abcdef'";

/**
 * Rows with an identity that is not in the declared format (none unless "sha256-hex"): 64 bytes,
 * each a lowercase hex digit. The byte test is jaccard's byte sets: the bytes of digits || id are
 * the digits' own set (similarity exactly 1) only when every byte of id is a digit. It costs half
 * of RE2's `regexp_full_match(id, '[0-9a-f]{64}')`, which it equals on every input
 * (test/sql/ingest.test.ts), and this check runs over every loaded identity.
 */
function wrongIdentityFormat(dataset: Dataset): string {
  if (dataset.identityFormat !== "sha256-hex") return "FALSE";
  const id = `CAST(${quoteIdent(dataset.identityColumn)} AS VARCHAR)`;
  const valid = `(strlen(${id}) = 64 AND jaccard(${HEX_DIGITS} || ${id}, ${HEX_DIGITS}) = 1)`;
  return `(NOT ${missingIdentity(dataset)} AND NOT ${valid})`;
}

/**
 * The owner's checks as one parallel scan of `table`: counts over the rows that will be kept
 * (identity present), the rows to drop (identity missing) and, for "sha256-hex", the kept
 * identities of another format; one row of BIGINTs in the order `qualityReport` reads them. The
 * bench runs the same statement over plain DuckDB's tables to price it (scripts/bench/privacy-tax.ts).
 */
export function qualityReportSql(dataset: Dataset, table: string): string {
  const id = quoteIdent(dataset.identityColumn);
  const keep = `FILTER (WHERE NOT ${missingIdentity(dataset)})`;
  const exprs = [
    `count(*) ${keep}`,
    ...dataset.columns.map((c) => `count(${quoteIdent(c.name)}) ${keep}`),
    // Distinct 64-bit hashes: exact unless two identities collide (~n²/2⁶⁵), and several times
    // faster than hashing the strings into a distinct set.
    `count(DISTINCT hash(${id})) ${keep}`,
    dataset.identityFormat === "sha256-hex" ? `count(*) FILTER (WHERE ${wrongIdentityFormat(dataset)})` : "0",
    `count(*) FILTER (WHERE ${missingIdentity(dataset)})`,
  ];
  return `SELECT ${exprs.map((e) => `CAST(${e} AS BIGINT)`).join(", ")} FROM ${quoteIdent(table)}`;
}

async function qualityReport(
  conn: DuckDBConnection,
  dataset: Dataset,
  table: string,
  rejected: number,
): Promise<QualityReport> {
  const result = await conn.runAndReadAll(qualityReportSql(dataset, table));
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
      invalidFormat: dataset.identityFormat === "sha256-hex" ? invalid : null,
      duplicates: rows - distinct,
    },
  };
}
