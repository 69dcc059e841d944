/**
 * Fuzzing CSV and Parquet ingest into the real locked engine: a mutated file either loads with
 * the contract's types or is refused with a typed ingest error, and never leaves a table behind.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { FULL, type FuzzFigures, fuzz, report, SEED, size } from "./harness.js";
import { csvSeeds, ingestTarget } from "./targets.js";

/**
 * Ingest is mostly native work, so the full run spreads its cases over two engines in parallel
 * (not more: a CSV load through a pipe holds a libuv pool thread while it waits for its writer).
 */
const SHARDS = FULL ? 2 : 1;
const engines: SqlEngine[] = [];
beforeAll(async () => {
  for (let i = 0; i < SHARDS; i++) engines.push(await openEngine({ memoryLimit: "256MB", threads: 1 }));
});
afterAll(() => {
  for (const e of engines) e.close();
});

async function fuzzIngest(format: "csv" | "parquet", seeds: Uint8Array[], ci: number): Promise<FuzzFigures> {
  const per = Math.ceil(size(ci, 100_000) / SHARDS);
  const shards = await Promise.all(
    engines.map((engine, i) =>
      fuzz(ingestTarget(engine, format, seeds), {
        numRuns: per,
        perCaseMs: 10_000,
        maxHeapGrowthMiB: 256,
        // One seed per shard, derived from the run's (printed in the report; see harness.ts SEED).
        seed: (SEED + i * 7919) | 0,
      }),
    ),
  );
  const f = shards.reduce((a, b) => ({
    seed: a.seed,
    cases: a.cases + b.cases,
    accepted: a.accepted + b.accepted,
    refused: a.refused + b.refused,
    codes: Object.fromEntries(
      [...new Set([...Object.keys(a.codes), ...Object.keys(b.codes)])].map((k) => [
        k,
        (a.codes[k] ?? 0) + (b.codes[k] ?? 0),
      ]),
    ),
    slowestMs: Math.max(a.slowestMs, b.slowestMs),
    heapGrowthMiB: Math.max(a.heapGrowthMiB, b.heapGrowthMiB),
    peakHeapMiB: Math.max(a.peakHeapMiB, b.peakHeapMiB),
  }));
  report({ suite: "fuzz", name: `ingest-${format}`, ...f, codes: JSON.stringify(f.codes) });
  return f;
}

/** A small Parquet file of the fuzz schema, written by a separate, unlocked DuckDB. */
async function parquetSeed(): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "fuzz-parquet-"));
  const file = join(dir, "seed.parquet");
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    await c.run(
      `COPY (SELECT lpad(to_hex(i), 64, '0') AS id, i::INTEGER AS age, DATE '2024-01-01' + i::INTEGER AS joined,
        TIMESTAMP '2024-01-01 00:00:00' AS seen, (i * 1.5)::DOUBLE AS score FROM range(6) t(i)) TO '${file}' (FORMAT parquet)`,
    );
    return new Uint8Array(await readFile(file));
  } finally {
    c.closeSync();
    db.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}

async function tablesLeft(): Promise<number> {
  let n = 0;
  for (const e of engines) {
    const r = await e.connection.runAndReadAll("SELECT count(*) FROM duckdb_tables()");
    n += Number(r.getRows()[0]![0]);
  }
  return n;
}

describe("ingest", () => {
  it("CSV: loads or refuses with a typed error; nothing half-loaded", { timeout: 3_600_000 }, async () => {
    const f = await fuzzIngest("csv", csvSeeds(), 120);
    expect(f.accepted).toBeGreaterThan(0);
    expect(f.refused).toBeGreaterThan(0);
    expect(await tablesLeft()).toBe(0);
  });

  it("Parquet: loads or refuses with a typed error; nothing half-loaded", {
    timeout: 3_600_000,
  }, async () => {
    const seed = await parquetSeed();
    // The seed itself loads, so refusals below are the mutations' doing.
    await ingestTarget(engines[0]!, "parquet", [seed]).run({ bytes: seed, chunk: 1000 });
    const f = await fuzzIngest("parquet", [seed], 80);
    expect(f.refused).toBeGreaterThan(0);
    expect(await tablesLeft()).toBe(0);
  });
});
