/**
 * Frames an age header out of a stream of pieces of any size. Each line is scanned once and the
 * buffer grows by doubling, so tiny pieces (a hostile relay writing one byte at a time) cost
 * linear time, and at most MAX_HEADER_BYTES are buffered before a header is refused.
 */
import { AgeFormatError } from "./errors.js";
import { type AgeHeader, MAX_HEADER_BYTES, parseHeader } from "./header.js";

const LF = 0x0a;
const DASH = 0x2d;
const VERSION_LINE = new TextEncoder().encode("age-encryption.org/v1\n");

export class HeaderReader {
  private buf = new Uint8Array(1024);
  private len = 0;
  private lineStart = 0;

  constructor(private readonly maxBytes = MAX_HEADER_BYTES) {}

  /**
   * Adds the next piece of input. Once the header is complete, returns it and the input that
   * followed it (the start of the payload); before that, returns undefined.
   */
  push(piece: Uint8Array): { header: AgeHeader; rest: Uint8Array[] } | undefined {
    // Buffer no more than the limit allows (+1 so an over-long header is still detected).
    const take = Math.min(piece.length, this.maxBytes + 1 - this.len);
    this.append(piece.subarray(0, take));
    const bytes = this.buf.subarray(0, this.len);
    for (let lf = bytes.indexOf(LF, this.lineStart); lf >= 0; lf = bytes.indexOf(LF, this.lineStart)) {
      const s = this.lineStart;
      // Fail fast on input that is not age at all rather than buffering the whole limit.
      if (s === 0 && !startsWith(bytes, VERSION_LINE)) parseHeader(bytes, this.maxBytes);
      if (bytes[s] === DASH && bytes[s + 1] === DASH && bytes[s + 2] === DASH) {
        const { header, length } = parseHeader(bytes, this.maxBytes);
        const rest: Uint8Array[] = [bytes.subarray(length)];
        if (take < piece.length) rest.push(piece.subarray(take));
        return { header, rest };
      }
      this.lineStart = lf + 1;
    }
    if (this.len > this.maxBytes) parseHeader(bytes, this.maxBytes);
    return undefined;
  }

  /** The input ended before the header did: raises the precise format error. */
  end(): never {
    parseHeader(this.buf.subarray(0, this.len), this.maxBytes);
    throw new AgeFormatError("header: truncated");
  }

  private append(part: Uint8Array): void {
    if (this.len + part.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + part.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(part, this.len);
    this.len += part.length;
  }
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
