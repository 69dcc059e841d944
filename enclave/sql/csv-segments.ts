/**
 * Re-chunks a CSV byte stream into segments that each end on a record boundary, so every segment
 * can be parsed on its own while the next one is still being decrypted (docs/INGEST.md). A record
 * boundary is a newline preceded by an even number of quote characters since the stream began:
 * exact for RFC 4180 quoting (a doubled "" inside a quoted field flips the parity twice). A stray
 * quote in an unquoted field (which DuckDB's strict parser rejects anyway) can only move a cut,
 * never lose or duplicate a byte: the segments always concatenate to the input.
 */

const QUOTE = 0x22;
const NEWLINE = 0x0a;

function quotesIn(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = b.indexOf(QUOTE, from); i !== -1 && i < to; i = b.indexOf(QUOTE, i + 1)) n++;
  return n;
}

/**
 * The offset just past the last record boundary in `b`, given whether the bytes before `b` ended
 * inside quotes; -1 when `b` has none.
 */
export function lastBoundary(b: Uint8Array, quotedBefore: boolean): number {
  const total = quotesIn(b, 0, b.length);
  let after = 0; // quotes at or after the candidate newline
  let end = b.length;
  for (let nl = b.lastIndexOf(NEWLINE); nl !== -1; nl = nl === 0 ? -1 : b.lastIndexOf(NEWLINE, nl - 1)) {
    after += quotesIn(b, nl, end);
    end = nl;
    const inQuotes = quotedBefore !== ((total - after) % 2 === 1);
    if (!inQuotes) return nl + 1;
  }
  return -1;
}

/**
 * Yields groups of chunks of at least `target` bytes (the last group may be smaller) that each
 * end on a record boundary; a record longer than `target` makes its segment longer. Chunks are
 * passed through without copying (a chunk holding a boundary is split with `subarray`).
 */
export async function* csvSegments(
  chunks: AsyncIterable<Uint8Array>,
  target: number,
): AsyncGenerator<Uint8Array[]> {
  let parts: Uint8Array[] = [];
  let size = 0;
  let quoted = false;
  for await (const chunk of chunks) {
    const cut = size + chunk.length < target ? -1 : lastBoundary(chunk, quoted);
    if (cut === -1) {
      parts.push(chunk);
      size += chunk.length;
      quoted = quoted !== (quotesIn(chunk, 0, chunk.length) % 2 === 1);
      continue;
    }
    parts.push(chunk.subarray(0, cut));
    yield parts;
    const rest = chunk.subarray(cut);
    parts = rest.length > 0 ? [rest] : [];
    size = rest.length;
    quoted = quotesIn(rest, 0, rest.length) % 2 === 1;
  }
  if (parts.length > 0) yield parts;
}
