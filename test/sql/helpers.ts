/** Shared fixtures for the SQL engine tests. */

import { Readable } from "node:stream";
import { UNIT_FROM, UNIT_SKIP, UNIT_TO } from "../../enclave/sql/dp-rewrite.js";
import type { ColumnType, Dataset, DatasetAnalysis } from "../../protocol/contract/types.js";

export function csvStream(text: string, chunkSize = 7): Readable {
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

/**
 * A CSV dataset: `columns` in order (name: type), the first one its identity column; the
 * analysis roles not given are empty, and `identityFormat` is set only when given.
 */
export function dataset(
  id: string,
  owner: string,
  columns: Record<string, ColumnType>,
  analysis: Partial<DatasetAnalysis> = {},
  identityFormat?: Dataset["identityFormat"],
): Dataset {
  const cols = Object.entries(columns).map(([name, type]) => ({ name, type }));
  return {
    id,
    owner,
    format: "csv",
    columns: cols,
    identityColumn: cols[0]!.name,
    ...(identityFormat ? { identityFormat } : {}),
    analysis: { joinColumns: [], dimensions: [], measures: [], ...analysis },
  };
}

export const people: Dataset = dataset(
  "people",
  "acme",
  { id: "VARCHAR", age: "INTEGER", joined: "DATE", score: "DOUBLE" },
  { dimensions: ["age", "joined"], measures: [{ column: "score", aggregates: ["count", "sum", "avg"] }] },
  "sha256-hex",
);

/** Party p's people in groups `g`; tests load many rows of one person (a self-join multiplies them). */
export const crowd: Dataset = dataset("crowd", "p", { id: "VARCHAR", g: "VARCHAR" }, { dimensions: ["g"] });

export const hex = (n: number): string => n.toString(16).padStart(64, "0");

/** A custom-rule rewrite with its unit parameters fixed to every unit, to run on its own. */
export const everyUnit = (sql: string): string =>
  sql
    .replaceAll(`$${UNIT_FROM}`, "0::UBIGINT")
    .replaceAll(`$${UNIT_TO}`, "18446744073709551615::UBIGINT")
    .replaceAll(`$${UNIT_SKIP}`, "[]::UBIGINT[]");
