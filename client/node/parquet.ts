/**
 * A decrypted result as a Parquet file, written by DuckDB in this process (the engine the
 * contract review already loads): the released rows go into an in-memory table, each column cast
 * to the type the enclave declared for it, and DuckDB's Parquet writer writes them to a private
 * temporary folder that is removed before the bytes are returned.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withLocalDuckDb } from "./duckdb.js";

export interface ResultDocument {
  columns: { name: string; type: string | null }[];
  rows: unknown[][];
}

/** Column types cast to as they are; any other (or none, a CSV-format run) stays text. */
const TYPES =
  /^(?:BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DATE|TIME|TIMESTAMP|TIMESTAMP WITH TIME ZONE|VARCHAR|DECIMAL\(\d{1,2},\s?\d{1,2}\))$/;

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

export async function resultToParquet(doc: ResultDocument): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "cleanroom-parquet-"));
  const file = join(dir, "result.parquet");
  try {
    await withLocalDuckDb(async (conn) => {
      const names = doc.columns.map((c) => ident(c.name));
      await conn.run(`CREATE TABLE t (${names.map((n) => `${n} VARCHAR`).join(", ")})`);
      const insert = `INSERT INTO t VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")})`;
      for (const row of doc.rows) {
        await conn.run(
          insert,
          row.map((v) =>
            v === null || v === undefined ? null : typeof v === "string" ? v : JSON.stringify(v),
          ),
        );
      }
      const select = doc.columns
        .map((c, i) => {
          const type = c.type && TYPES.test(c.type) ? c.type : "VARCHAR";
          return `CAST(${names[i]} AS ${type}) AS ${names[i]}`;
        })
        .join(", ");
      // The path is this function's own temporary file: no input reaches the statement's text but
      // quoted column names and allow-listed type names.
      await conn.run(`COPY (SELECT ${select} FROM t) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
    });
    return new Uint8Array(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
