/**
 * Re-chunks a CSV byte stream into segments that each end on a record boundary, so every segment
 * can be parsed on its own while the next one is still being decrypted (docs/INGEST.md). A record
 * boundary is a newline preceded by an even number of quote characters since the stream began:
 * exact for RFC 4180 quoting (a doubled "" inside a quoted field flips the parity twice). A stray
 * quote in an unquoted field (which DuckDB's strict parser rejects anyway) can only move a cut,
 * never lose or duplicate a byte: the segments always concatenate to the input.
 *
 * Pieces may arrive with their quote count already taken (the decrypt workers count them), so
 * the main thread scans only the tail of the piece a cut falls in, never every byte.
 */

const QUOTE = 0x22;
const NEWLINE = 0x0a;

/**
 * Bytes of a CSV stream, with the number of `"` in them when the producer already counted, and
 * what to call once they are written out (the decrypt buffer is then reused).
 */
export interface CsvPiece {
  bytes: Uint8Array;
  quotes?: number;
  release?(): void;
}

/** A record-aligned segment: its bytes, and the pieces whose last byte it holds. */
export interface Segment {
  parts: Uint8Array[];
  /** Free (`release`) once `parts` are written: no later segment holds any of their bytes. */
  done: CsvPiece[];
}

function quotesIn(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = b.indexOf(QUOTE, from); i !== -1 && i < to; i = b.indexOf(QUOTE, i + 1)) n++;
  return n;
}

/**
 * The offset just past the last record boundary in `b` and the quotes after it, given whether the
 * bytes before `b` ended inside quotes and the quotes in all of `b`; null when `b` has none.
 */
function boundary(
  b: Uint8Array,
  quotedBefore: boolean,
  total: number,
): { cut: number; after: number } | null {
  let after = 0; // quotes at or after the candidate newline
  let end = b.length;
  for (let nl = b.lastIndexOf(NEWLINE); nl !== -1; nl = nl === 0 ? -1 : b.lastIndexOf(NEWLINE, nl - 1)) {
    after += quotesIn(b, nl, end);
    end = nl;
    const inQuotes = quotedBefore !== ((total - after) % 2 === 1);
    if (!inQuotes) return { cut: nl + 1, after };
  }
  return null;
}

/**
 * The offset just past the last record boundary in `b`, given whether the bytes before `b` ended
 * inside quotes; -1 when `b` has none.
 */
export function lastBoundary(b: Uint8Array, quotedBefore: boolean): number {
  return boundary(b, quotedBefore, quotesIn(b, 0, b.length))?.cut ?? -1;
}

/**
 * Yields groups of chunks of at least `target` bytes (the last group may be smaller) that each
 * end on a record boundary; a record longer than `target` makes its segment longer. Chunks are
 * passed through without copying (a chunk holding a boundary is split with `subarray`).
 */
export async function* csvSegments(
  pieces: AsyncIterable<Uint8Array | CsvPiece>,
  target: number,
): AsyncGenerator<Segment> {
  let parts: Uint8Array[] = [];
  let owners: CsvPiece[] = [];
  let size = 0;
  let quoted = false;
  for await (const item of pieces) {
    const piece = item instanceof Uint8Array ? { bytes: item } : item;
    const chunk = piece.bytes;
    const total = piece.quotes ?? quotesIn(chunk, 0, chunk.length);
    const found = size + chunk.length < target ? null : boundary(chunk, quoted, total);
    if (found === null) {
      parts.push(chunk);
      owners.push(piece);
      size += chunk.length;
      quoted = quoted !== (total % 2 === 1);
      continue;
    }
    parts.push(chunk.subarray(0, found.cut));
    const rest = chunk.subarray(found.cut);
    yield { parts, done: rest.length > 0 ? owners : [...owners, piece] };
    parts = rest.length > 0 ? [rest] : [];
    owners = rest.length > 0 ? [piece] : [];
    size = rest.length;
    quoted = found.after % 2 === 1;
  }
  if (parts.length > 0 || owners.length > 0) yield { parts, done: owners };
}
