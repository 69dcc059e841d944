/**
 * Checks a CSV stream's header line against the contract's columns (names, order, count) as the
 * bytes pass by, then forwards every byte unchanged. DuckDB is told the column names and types
 * explicitly, so without this a file with swapped columns of equal types would load silently.
 */
import type { Column } from "../../protocol/contract/types.js";
import { IngestError } from "./errors.js";

const MAX_HEADER = 64 * 1024;

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

export async function* checkHeader(source: AsyncIterable<Uint8Array | string>, columns: Column[]) {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const held: Uint8Array[] = [];
  let text = "";
  let checked = false;
  for await (const raw of source) {
    const chunk = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
    if (checked) {
      yield chunk;
      continue;
    }
    held.push(chunk);
    text += decoder.decode(chunk, { stream: true });
    const end = text.indexOf("\n");
    if (end < 0) {
      if (text.length > MAX_HEADER) throw new IngestError("ingest: header line too long", { row: 0 });
      continue;
    }
    compare(
      parseRecord(
        text
          .slice(0, end)
          .replace(/^\uFEFF/, "")
          .replace(/\r$/, ""),
      ),
      columns,
    );
    checked = true;
    yield* held;
    held.length = 0;
  }
  if (!checked) {
    if (text.length === 0) throw new IngestError("ingest: empty file", { row: 0 });
    compare(parseRecord(text.replace(/^\uFEFF/, "").replace(/\r$/, "")), columns);
    yield* held;
  }
}
