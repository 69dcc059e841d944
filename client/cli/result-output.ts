/**
 * How a decrypted result leaves the CLI: CSV (as the enclave writes it), JSON with numbers typed
 * (client/sdk/results.ts) or Parquet (client/node/parquet.ts), to stdout or a file (mode 0600),
 * and the run's facts for --json.
 */
import { writeFile } from "node:fs/promises";
import { UsageError } from "../../attestation/errors.js";
import { resultToParquet } from "../node/parquet.js";
import { parseCsv } from "../sdk/csv.js";
import type { QueryResult } from "../sdk/query.js";
import { jsonResultToCsv, parseJsonResult, typedJsonResult } from "../sdk/results.js";

export type OutputFormat = "csv" | "json" | "parquet";

export function outputFormat(value: string): OutputFormat {
  if (value !== "csv" && value !== "json" && value !== "parquet") {
    throw new UsageError(`--format must be csv, json or parquet, not ${value}`);
  }
  return value;
}

/** The result document for --format json: typed when the run was JSON, text cells when it was CSV. */
export function resultJson(r: QueryResult): {
  columns: { name: string; type: string | null }[];
  rows: unknown[][];
} {
  const data = r.data!;
  if (r.response.format === "json") return typedJsonResult(parseJsonResult(data));
  // A run requested as CSV carries no column types: its cells stay text.
  const [head = [], ...rows] = parseCsv(new TextDecoder().decode(data));
  return {
    columns: head.map((name) => ({ name, type: null })),
    rows: rows.map((row) => row.map((c) => (c === "" ? null : c))),
  };
}

/** The result's bytes in `format` (Parquet: written by DuckDB in this process, typed as the enclave declared). */
export async function resultBytes(r: QueryResult, format: OutputFormat): Promise<Uint8Array> {
  if (format === "parquet") return resultToParquet(resultJson(r));
  if (format === "json") return new TextEncoder().encode(`${JSON.stringify(resultJson(r))}\n`);
  if (r.response.format === "csv") return r.data!;
  return new TextEncoder().encode(jsonResultToCsv(parseJsonResult(r.data!)));
}

/** What --json prints about a run (and its result when it is not written to a file). */
export function runFacts(r: QueryResult, withResult: boolean): Record<string, unknown> {
  const b = r.response;
  return {
    resultId: r.id,
    queryId: b.queryId,
    requester: b.requester,
    epsilon: b.epsilon,
    head: b.head,
    recipient: r.data !== undefined,
    ...(r.receipt.rows !== undefined ? { rows: r.receipt.rows } : {}),
    ...(r.receipt.truncated ? { truncated: true } : {}),
    ...(withResult && r.data !== undefined ? { result: resultJson(r) } : {}),
  };
}

export async function writeResult(path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes, { mode: 0o600 });
}
