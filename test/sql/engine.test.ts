import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";

let engine: SqlEngine;
beforeAll(async () => {
  engine = await openEngine({ memoryLimit: "256MB", threads: 1 });
});
afterAll(() => engine.close());

async function setting(name: string): Promise<string> {
  const r = await engine.connection.runAndReadAll("SELECT value FROM duckdb_settings() WHERE name = $1", [
    name,
  ]);
  return String(r.getRows()[0]?.[0]);
}

describe("engine lockdown", () => {
  it("applies the requested limits and lockdown settings", async () => {
    expect(await setting("enable_external_access")).toBe("false");
    expect(await setting("lock_configuration")).toBe("true");
    expect(await setting("autoinstall_known_extensions")).toBe("false");
    expect(await setting("autoload_known_extensions")).toBe("false");
    expect(await setting("allow_community_extensions")).toBe("false");
    expect(await setting("enable_external_file_cache")).toBe("false");
    expect(await setting("preserve_insertion_order")).toBe("false");
    expect(await setting("threads")).toBe("1");
    expect(await setting("temp_directory")).toBe("");
    expect(await setting("memory_limit")).toMatch(/^2[0-9.]+ MiB$/);
    // Freed memory stays with the allocator up to the limit instead of being unmapped per statement.
    expect(await setting("allocator_flush_threshold")).toBe(await setting("memory_limit"));
    expect(await setting("allowed_directories")).toBe(`[${engine.scratchDir}/]`);
  });

  const refused: [string, string][] = [
    ["COPY TO a file", "COPY (SELECT 1) TO '/tmp/cleanroom-leak.csv'"],
    ["EXPORT DATABASE", "EXPORT DATABASE '/tmp/cleanroom-export'"],
    ["ATTACH a file", "ATTACH '/tmp/cleanroom.db' AS leak"],
    ["INSTALL", "INSTALL httpfs"],
    ["LOAD", "LOAD httpfs"],
    ["read_csv of /etc/passwd", "SELECT * FROM read_csv('/etc/passwd')"],
    ["read_text of /etc/passwd", "SELECT * FROM read_text('/etc/passwd')"],
    ["read_parquet", "SELECT * FROM read_parquet('/tmp/x.parquet')"],
    ["glob", "SELECT * FROM glob('/*')"],
    ["http read", "SELECT * FROM read_csv('https://example.com/x.csv')"],
    ["http replacement scan", "SELECT * FROM 'http://example.com/x.parquet'"],
    ["SET memory_limit", "SET memory_limit = '8GB'"],
    ["SET enable_external_access", "SET enable_external_access = true"],
    ["SET allowed_directories", "SET allowed_directories = ['/']"],
    ["SET temp_directory", "SET temp_directory = '/tmp'"],
    ["SET profiling_output", "SET profiling_output = '/tmp/profile.json'"],
    ["SET GLOBAL lock_configuration", "SET GLOBAL lock_configuration = false"],
    ["RESET lock_configuration", "RESET lock_configuration"],
    ["RESET memory_limit", "RESET memory_limit"],
    ["PRAGMA threads", "PRAGMA threads = 8"],
    ["PRAGMA memory_limit", "PRAGMA memory_limit = '8GB'"],
  ];
  it.each(refused)("refuses %s", async (_name, sql) => {
    // The refusal must come from the lockdown, not from a typo in the statement.
    await expect(engine.connection.run(sql)).rejects.toThrow(/permission|locked|disabled/i);
  });

  it("locks a compressed-storage engine the same way, with its tables in the compressed database", async () => {
    const compressed = await openEngine({ memoryLimit: "256MB", threads: 1, compress: true });
    try {
      for (const [, sql] of refused) {
        await expect(compressed.connection.run(sql)).rejects.toThrow(/permission|locked|disabled/i);
      }
      const conn = await compressed.connect();
      await conn.run("CREATE TABLE t AS SELECT 1 AS x");
      const r = await conn.runAndReadAll("SELECT database_name FROM duckdb_tables() WHERE table_name = 't'");
      expect(r.getRows()).toEqual([["tables"]]);
      conn.closeSync();
    } finally {
      compressed.close();
    }
  });

  it("still has configuration unchanged after the refused statements", async () => {
    expect(await setting("enable_external_access")).toBe("false");
    expect(await setting("threads")).toBe("1");
  });

  it("refuses a scratch root that is not a memory filesystem", async () => {
    await expect(openEngine({ scratchRoot: process.cwd() })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });

  it("refuses malformed options", async () => {
    await expect(openEngine({ memoryLimit: "1GB'; ATTACH" })).rejects.toMatchObject({ code: "ERR_USAGE" });
    await expect(openEngine({ threads: 0 })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });
});
