/**
 * A private DuckDB for work on the party's own machine (the contract review's parser, a result's
 * Parquet file): in memory, one thread, no extension installed or loaded.
 */
import type { DuckDBConnection } from "@duckdb/node-api";

/** Runs `use` on a connection to a fresh in-memory instance with `settings` added; closes both after. */
export async function withLocalDuckDb<T>(
  use: (conn: DuckDBConnection) => Promise<T>,
  settings: Record<string, string> = {},
): Promise<T> {
  // Loaded on first use: the native engine is no cost to SDK users and CLI commands that never need it.
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const instance = await DuckDBInstance.create(":memory:", {
    ...settings,
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
    threads: "1",
  });
  try {
    const conn = await instance.connect();
    try {
      return await use(conn);
    } finally {
      conn.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}
