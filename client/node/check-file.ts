/** `cleanroom check` on a file: streams it through the portable checker (client/sdk/check.ts). */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Dataset } from "../../protocol/contract/types.js";
import { type CheckOptions, type CheckReport, checkCsv } from "../sdk/check.js";

/** 1 MiB reads: large enough to be fast, small enough to keep memory flat whatever the size. */
const CHUNK = 1 << 20;

/**
 * Checks the file at `path` against `dataset`. A Parquet dataset's file is checked for being
 * Parquet only (its columns are checked by the enclave when it loads it).
 */
export async function checkFile(path: string, dataset: Dataset, o: CheckOptions = {}): Promise<CheckReport> {
  if (dataset.format === "parquet") return checkParquetMagic(path, dataset);
  return checkCsv(createReadStream(path, { highWaterMark: CHUNK }), dataset, o);
}

async function checkParquetMagic(path: string, dataset: Dataset): Promise<CheckReport> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(4);
    if (size >= 8) {
      await fh.read(head, 0, 4, 0);
      await fh.read(tail, 0, 4, size - 4);
    }
    const ok = head.toString("latin1") === "PAR1" && tail.toString("latin1") === "PAR1";
    return {
      dataset: dataset.id,
      ok,
      rows: 0,
      bytes: size,
      problems: ok
        ? []
        : [
            {
              code: "NOT_PARQUET",
              message: `not a Parquet file (dataset ${dataset.id} is declared as Parquet)`,
            },
          ],
      counts: ok ? {} : { NOT_PARQUET: 1 },
      rowsWithoutIdentity: 0,
    };
  } finally {
    await fh.close();
  }
}
