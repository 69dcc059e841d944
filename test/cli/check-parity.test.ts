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

/** A CSV dataset of a text identity `id` and a value `v` of `type`. */
function twoColumns(id: string, type: ColumnType): Dataset {
  return {
    id,
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
}

/** Whether `check` passes `csv` and whether the enclave loads it, segment by segment. */
async function both(
  dataset: Dataset,
  csv: string,
): Promise<{ checked: boolean; loaded: boolean; problems: string }> {
  const bytes = new TextEncoder().encode(csv);
  const checked = await checkCsv(
    (async function* () {
      yield bytes;
    })(),
    dataset,
  );
  const loaded = await ingestDataset(engine, dataset, Readable.from([bytes]), { segmentBytes: 1 }).then(
    () => true,
    () => false,
  );
  if (loaded)
    await engine.connection.run(`DROP TABLE ${dataset.id}`).then(() => engine.datasets.delete(dataset.id));
  return { checked: checked.ok, loaded, problems: JSON.stringify(checked.problems) };
}

// Line endings: the enclave reads every line with the header line's ending, whatever quoted
// fields hold and wherever a segment starts (a segment per record here).
const endings: [string, string, boolean][] = [
  ["LF throughout", "id,v\na,1\nb,2\n", true],
  ["CRLF throughout", "id,v\r\na,1\r\nb,2\r\n", true],
  ["no line break after the last row", "id,v\r\na,1\r\nb,2", true],
  ["quoted CR, LF and CRLF in LF lines", 'id,v\n"\ra",1\n"b\nc",2\n"d\r\n",3\n', true],
  ["quoted CR and LF in CRLF lines", 'id,v\r\n"\ra",1\r\n"b\n",2\r\n', true],
  ["a CRLF header over LF rows", "id,v\r\na,1\nb,2\n", false],
  ["an LF header over CRLF rows", "id,v\na,1\r\nb,2\r\n", false],
  ["one CRLF row among LF rows", "id,v\na,1\nb,2\r\nc,3\n", false],
  ["a row ending in a lone CR", "id,v\na,1\rb,2\n", false],
  ["a blank CRLF line in an LF file", "id,v\na,1\n\r\nb,2\n", false],
];

describe("check agrees with the enclave's loader on line endings", () => {
  it.each(endings.map((c, i) => [...c, i] as const))("%s", async (_name, csv, expected, i) => {
    const r = await both(twoColumns(`endings_${i}`, "INTEGER"), csv);
    expect(r.loaded).toBe(expected);
    expect(r.checked, r.problems).toBe(r.loaded);
    if (!expected) expect(r.problems).toContain("LINE_ENDING");
  });
});

describe("check agrees with the enclave's loader", () => {
  it.each(cases.map((c, i) => [...c, i] as const))("%s %j", async (type, value, i) => {
    const r = await both(
      twoColumns(`parity_${i}`, type),
      `id,v\nperson,${value.includes(",") ? `"${value}"` : value}\n`,
    );
    expect(r.checked, r.problems).toBe(r.loaded);
  });
});
