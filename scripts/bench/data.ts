/**
 * Benchmark data: the demo's seeded generator (scripts/demo/usecases.ts) written to CSV files of
 * about the same number of rows per party. Exposures average 2 rows per identity and purchases
 * 1.14, so each party gets its own identity count; users and their arms are the same for both,
 * so the join finds real overlap. Same seed and size, same bytes.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { exposures, purchases, useCaseRows } from "../demo/usecases.js";

export type Which = "purchases" | "exposures";

/** Mean rows per identity of each generated table (see useCaseRows). */
const ROWS_PER_IDENTITY: Record<Which, number> = { exposures: 2, purchases: 1.14 };

export const DATASET_OF = { purchases, exposures } as const;

export interface DataFile {
  which: Which;
  dataset: string;
  path: string;
  rows: number;
  bytes: number;
}

export function identitiesFor(which: Which, rowsPerParty: number): number {
  return Math.max(1, Math.round(rowsPerParty / ROWS_PER_IDENTITY[which]));
}

/** CSV text chunks (header first) for about `rowsPerParty` rows of one party's table. */
export function partyRows(which: Which, rowsPerParty: number, seed: number): Generator<string> {
  return useCaseRows(which, { identities: identitiesFor(which, rowsPerParty), seed, batch: 20_000 });
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** Writes one party's CSV; `onRows` sees the running row count (for progress bars). */
export function writePartyCsv(
  dir: string,
  which: Which,
  rowsPerParty: number,
  seed: number,
  onRows?: (rows: number) => void,
): DataFile {
  const path = join(dir, `${which}-${rowsPerParty}-s${seed}.csv`);
  const fd = openSync(path, "w", 0o600);
  let lines = 0;
  let bytes = 0;
  try {
    for (const chunk of partyRows(which, rowsPerParty, seed)) {
      const buf = Buffer.from(chunk);
      writeSync(fd, buf);
      bytes += buf.length;
      lines += countLines(chunk);
      onRows?.(lines - 1);
    }
    // On disk before anything is timed: a baseline read while the kernel writes the file back is slower.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { which, dataset: DATASET_OF[which].id, path, rows: lines - 1, bytes };
}
