/**
 * Dataset versions: how a checked staging table becomes (part of) a dataset's table, and the
 * lock that keeps that switch apart from query runs. A first load renames the staging table; a
 * replacement drops the old table and renames the new one in one transaction; an append inserts
 * the staged rows in one transaction. A failed load never reaches this step, so the previous
 * version stays as it was. Queries hold the lock shared for their whole run, so the versions a
 * run reports are the ones its snapshot read.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { UsageError } from "../../attestation/errors.js";
import type { Dataset } from "../../protocol/contract/types.js";
import { quoteIdent, type SqlEngine } from "./engine.js";

/** "new": the first version; "replace": instead of the loaded rows; "append": added to them. */
export type LoadMode = "new" | "replace" | "append";

/** One load of a dataset in this enclave instance (its lineage is the list of them). */
export interface DatasetVersion {
  /** 1 for the first load in this instance, then one more per load. */
  version: number;
  mode: LoadMode;
  /** SHA-256 (hex) of the age file loaded; null when loaded from plaintext (engine tests, benches). */
  ciphertextDigest: string | null;
  /** Rows this load added. */
  rows: number;
  /** Rows in the dataset's table after it. */
  totalRows: number;
}

/**
 * Many readers (query runs) or one writer (a version switch), writers first: a waiting switch
 * holds back new runs, so a steady stream of queries cannot postpone it forever.
 */
export class TableLock {
  #readers = 0;
  #writing = false;
  #waiting: { write: boolean; go: () => void }[] = [];

  async read<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#writing || this.#waiting.some((w) => w.write)) {
      await new Promise<void>((go) => this.#waiting.push({ write: false, go }));
    } else this.#readers++;
    try {
      return await fn();
    } finally {
      this.#readers--;
      this.#wake();
    }
  }

  async write<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#writing || this.#readers > 0) {
      await new Promise<void>((go) => this.#waiting.push({ write: true, go }));
    } else this.#writing = true;
    try {
      return await fn();
    } finally {
      this.#writing = false;
      this.#wake();
    }
  }

  /** Hands the lock to the next writer when free, else to every reader queued before it. */
  #wake(): void {
    if (this.#writing) return;
    const next = this.#waiting[0];
    if (!next) return;
    if (next.write) {
      if (this.#readers > 0) return;
      this.#waiting.shift();
      this.#writing = true;
      next.go();
      return;
    }
    while (this.#waiting[0] && !this.#waiting[0].write) {
      this.#readers++;
      this.#waiting.shift()!.go();
    }
  }
}

/**
 * Makes the checked `staging` table (`rows` rows of the file `ciphertextDigest`) the dataset's rows
 * as `mode` says, and records the new version in the engine's lineage. Runs under the engine's
 * table lock (no query sees the table and the lineage disagree) and in one transaction, so a
 * failure leaves the previous version whole.
 */
export async function commitStaged(
  engine: SqlEngine,
  conn: DuckDBConnection,
  load: {
    dataset: Dataset;
    staging: string;
    mode: LoadMode;
    rows: number;
    ciphertextDigest: string | null;
    /** Runs before the lock is released: the version is recorded before any query reads it. */
    onCommit?: (version: DatasetVersion) => Promise<void>;
  },
): Promise<DatasetVersion> {
  const { dataset, staging, mode } = load;
  const loaded = engine.datasets.has(dataset.id);
  if (mode === "new" ? loaded : !loaded) {
    throw new UsageError(mode === "new" ? "ingest: dataset already loaded" : "ingest: dataset not loaded");
  }
  const table = quoteIdent(dataset.id);
  const staged = quoteIdent(staging);
  return engine.tables.write(async () => {
    await conn.run("BEGIN TRANSACTION");
    try {
      if (mode === "append") {
        await conn.run(`INSERT INTO ${table} SELECT * FROM ${staged}`);
        await conn.run(`DROP TABLE ${staged}`);
      } else {
        if (mode === "replace") await conn.run(`DROP TABLE ${table}`);
        await conn.run(`ALTER TABLE ${staged} RENAME TO ${table}`);
      }
      await conn.run("COMMIT");
    } catch (e) {
      await conn.run("ROLLBACK").catch(() => undefined);
      throw e;
    }
    engine.datasets.set(dataset.id, dataset);
    const counted = await conn.runAndReadAll(`SELECT count(*)::BIGINT FROM ${table}`);
    const lineage = mode === "new" ? [] : (engine.versions.get(dataset.id) ?? []);
    const version: DatasetVersion = {
      version: (lineage.at(-1)?.version ?? 0) + 1,
      mode,
      ciphertextDigest: load.ciphertextDigest,
      rows: load.rows,
      totalRows: Number(counted.getRows()[0]?.[0] ?? 0),
    };
    engine.versions.set(dataset.id, [...lineage, version]);
    await load.onCommit?.(version);
    return version;
  });
}
