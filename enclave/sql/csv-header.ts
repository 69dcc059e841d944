/**
 * Checks a CSV stream's header line against the contract's columns (names, order, count) as the
 * bytes pass by, then forwards every byte unchanged. DuckDB is told the column names and types
 * explicitly, so without this a file with swapped columns of equal types would load silently.
 */
import type { Column } from "../../protocol/contract/types.js";
import type { CsvPiece } from "./csv-segments.js";
import { IngestError } from "./errors.js";

const MAX_HEADER = 64 * 1024;
const NEWLINE = 0x0a;

/** Splits one CSV record (RFC 4180 quoting, comma separator) into fields. */
function parseRecord(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      fields.push(field);
      field = "";
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

function compare(header: string[], columns: Column[]): void {
  for (const [i, c] of columns.entries()) {
    if (header[i]?.trim() !== c.name) {
      throw new IngestError(`ingest: header column ${i + 1} is not ${c.name}`, { row: 0, column: c.name });
    }
  }
  if (header.length !== columns.length) throw new IngestError("ingest: header has extra columns", { row: 0 });
}

/**
 * Passes `source` through unchanged once its first line (held back until complete, at most
 * MAX_HEADER bytes) names exactly the contract's columns in order. Only the header's bytes are
 * decoded, whatever the size of the pieces. Before the first piece passes, `onLineEnd` learns
 * whether the header line ends in CRLF: the file's line ending, which every segment is read with.
 */
export async function* checkHeader(
  source: AsyncIterable<Uint8Array | string | CsvPiece>,
  columns: Column[],
  onLineEnd?: (crlf: boolean) => void,
): AsyncGenerator<Uint8Array | CsvPiece> {
  const held: (Uint8Array | CsvPiece)[] = [];
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let checked = false;
  for await (const raw of source) {
    const piece = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
    if (checked) {
      yield piece;
      continue;
    }
    held.push(piece);
    const bytes = piece instanceof Uint8Array ? piece : piece.bytes;
    const end = bytes.indexOf(NEWLINE);
    const part = end < 0 ? bytes : bytes.subarray(0, end);
    head.push(part.subarray(0, MAX_HEADER + 1 - headBytes));
    headBytes += Math.min(part.length, MAX_HEADER + 1 - headBytes);
    if (end < 0) {
      if (headBytes > MAX_HEADER) throw new IngestError("ingest: header line too long", { row: 0 });
      continue;
    }
    if (headBytes > MAX_HEADER) throw new IngestError("ingest: header line too long", { row: 0 });
    const line = headerLine(head);
    compare(headerFields(line), columns);
    onLineEnd?.(line.endsWith("\r"));
    checked = true;
    yield* held;
    held.length = 0;
  }
  if (!checked) {
    if (headBytes === 0) throw new IngestError("ingest: empty file", { row: 0 });
    compare(headerFields(headerLine(head)), columns);
    yield* held;
  }
}

function headerLine(head: Uint8Array[]): string {
  return new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(head));
}

function headerFields(line: string): string[] {
  return parseRecord(line.replace(/^\uFEFF/, "").replace(/\r$/, ""));
}
