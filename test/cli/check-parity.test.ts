/**
 * The local check against the enclave's own loader: for each value, `check` passes a one-row file
 * exactly when the enclave's ingest (DuckDB's CSV reader with the contract's types) loads it, so a
 * file refused here would be refused there and one passed here loads there.
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkCsv } from "../../client/sdk/check.js";
import { openEngine, type SqlEngine } from "../../enclave/sql/engine.js";
import { ingestDataset } from "../../enclave/sql/ingest.js";
import type { ColumnType, Dataset } from "../../protocol/contract/types.js";

let engine: SqlEngine;
beforeAll(async () => {
  engine = await openEngine();
});
afterAll(() => engine.close());

const cases: [ColumnType, string][] = [
  ["BIGINT", "42"],
  ["BIGINT", "-7"],
  ["BIGINT", "+5"],
  ["BIGINT", "1e3"],
  ["BIGINT", "1.5"],
  ["BIGINT", "1_000"],
  ["BIGINT", "12a"],
  ["BIGINT", "1,000"],
  ["BIGINT", "$3"],
  ["INTEGER", "2147483647"],
  ["INTEGER", "3000000000"],
  ["DOUBLE", "12.50"],
  ["DOUBLE", ".5"],
  ["DOUBLE", "5."],
  ["DOUBLE", "-1.5e-3"],
  ["DOUBLE", "inf"],
  ["DOUBLE", "NaN"],
  ["DOUBLE", "12,50"],
  ["DOUBLE", "€12"],
  ["DOUBLE", "twelve"],
  ["BOOLEAN", "true"],
  ["BOOLEAN", "F"],
  ["BOOLEAN", "yes"],
  ["BOOLEAN", "0"],
  ["BOOLEAN", "maybe"],
  ["DATE", "2024-04-01"],
  ["DATE", "2024-4-1"],
  ["DATE", "2024/04/01"],
  ["DATE", "2024-02-30"],
  ["DATE", "01/04/2024"],
  ["DATE", "April 1"],
  ["TIMESTAMP", "2024-04-01 10:00:00"],
  ["TIMESTAMP", "2024-04-01T10:00:00Z"],
  ["TIMESTAMP", "2024-04-01 10:00"],
  ["TIMESTAMP", "2024-04-01"],
  ["TIMESTAMP", "2024-04-01 10:00:00.123456"],
  ["TIMESTAMP", "2024-04-01 25:00:00"],
  ["TIMESTAMP", "01/04/2024 10:00"],
  ["TIMESTAMP", "yesterday"],
];

describe("check agrees with the enclave's loader", () => {
  it.each(cases.map((c, i) => [...c, i] as const))("%s %j", async (type, value, i) => {
    const dataset: Dataset = {
      id: `parity_${i}`,
      owner: "a",
      format: "csv",
      columns: [
        { name: "id", type: "VARCHAR" },
        { name: "v", type },
      ],
      identityColumn: "id",
      identityFormat: "any",
      analysis: { joinColumns: [], dimensions: [], measures: [] },
    };
    const csv = `id,v\nperson,${value.includes(",") ? `"${value}"` : value}\n`;
    const bytes = new TextEncoder().encode(csv);
    const checked = await checkCsv(
      (async function* () {
        yield bytes;
      })(),
      dataset,
    );
    const loaded = await ingestDataset(engine, dataset, Readable.from([bytes])).then(
      () => true,
      () => false,
    );
    expect(checked.ok, JSON.stringify(checked.problems)).toBe(loaded);
  });
});
