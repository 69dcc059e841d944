/** `hash-ids` on files: stream a CSV through the portable hasher with node:crypto's SHA-256. */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { unlink } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type HashCsvOptions, hashCsv } from "../sdk/hash-ids.js";

const nodeSha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** Writes `output`; on any failure removes the partial file so no half-hashed CSV is left. */
export async function hashIdsFile(
  input: string,
  output: string,
  o: Omit<HashCsvOptions, "hash">,
): Promise<void> {
  const chunks = createReadStream(input, { encoding: "utf8" }) as AsyncIterable<string>;
  try {
    await pipeline(
      Readable.from(hashCsv(chunks, { ...o, hash: nodeSha256 })),
      createWriteStream(output, { flags: "wx" }),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") await unlink(output).catch(() => undefined);
    throw e;
  }
}
