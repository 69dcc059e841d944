/** Shared fixtures for the SQL engine tests. */
import { Readable } from "node:stream";
import type { Dataset } from "../../protocol/contract/types.js";

export function csvStream(text: string, chunkSize = 7): Readable {
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

export const people: Dataset = {
  id: "people",
  owner: "acme",
  format: "csv",
  columns: [
    { name: "id", type: "VARCHAR" },
    { name: "age", type: "INTEGER" },
    { name: "joined", type: "DATE" },
    { name: "score", type: "DOUBLE" },
  ],
  identityColumn: "id",
  identityFormat: "sha256-hex",
  analysis: {
    joinColumns: [],
    dimensions: ["age", "joined"],
    measures: [{ column: "score", aggregates: ["count", "sum", "avg"] }],
  },
};

export const hex = (n: number): string => n.toString(16).padStart(64, "0");
