/**
 * The age v1 header as text (C2SP age, "Header"): bytes <-> stanzas and MAC, no crypto.
 * Strict on purpose: the MAC covers the header bytes as written, so any latitude here
 * (padding, CRLF, long lines) would make the same header encodable in several ways.
 */
import { base64nopad } from "@scure/base";
import { AgeFormatError } from "./errors.js";

/** One recipient stanza; `args[0]` is the stanza type (e.g. "X25519"). */
export interface Stanza {
  readonly args: readonly string[];
  readonly body: Uint8Array;
}

export interface AgeHeader {
  readonly stanzas: readonly Stanza[];
  /** The 32-byte HMAC-SHA-256 from the "---" line. */
  readonly mac: Uint8Array;
  /** The header bytes the MAC covers: from the version line through the "---" mark. */
  readonly macInput: Uint8Array;
}

/** Hostile input can't make us buffer more than this before the header ends (about 600 X25519 stanzas). */
export const MAX_HEADER_BYTES = 64 * 1024;

const VERSION_LINE = "age-encryption.org/v1";
const VERSION_PREFIX = "age-encryption.org/";
const STANZA_PREFIX = "-> ";
const MAC_MARK = "---";
const BODY_COLUMNS = 64;
const MAC_BYTES = 32;
const LF = 0x0a;

/** Canonical unpadded base64; @scure/base rejects padding, stray characters and non-zero trailing bits. */
export function decodeBase64(text: string, what: string): Uint8Array {
  try {
    return base64nopad.decode(text);
  } catch (cause) {
    throw new AgeFormatError(`${what}: non-canonical base64`, { cause });
  }
}

export function encodeBase64(bytes: Uint8Array): string {
  return base64nopad.encode(bytes);
}

/** An argument is 1*VCHAR; checked on both parse and format so we never emit what we'd refuse. */
function isArgument(arg: string): boolean {
  return /^[\x21-\x7e]+$/.test(arg);
}

/**
 * Parses the header at the start of `bytes` (which may continue with the payload).
 * Returns the header and its length in bytes, the payload starting right after.
 */
export function parseHeader(
  bytes: Uint8Array,
  maxBytes = MAX_HEADER_BYTES,
): { header: AgeHeader; length: number } {
  let pos = 0;
  // Lines are printable ASCII; CR, NUL and non-ASCII bytes are refused here once for all.
  const nextLine = (): string => {
    const lf = bytes.indexOf(LF, pos);
    if (lf < 0)
      throw new AgeFormatError(bytes.length > maxBytes ? "header: exceeds size limit" : "header: truncated");
    if (lf >= maxBytes) throw new AgeFormatError("header: exceeds size limit");
    let line = "";
    for (let i = pos; i < lf; i++) {
      const c = bytes[i]!;
      if (c < 0x20 || c > 0x7e) throw new AgeFormatError("header: non-printable byte");
      line += String.fromCharCode(c);
    }
    pos = lf + 1;
    return line;
  };

  const version = nextLine();
  if (version !== VERSION_LINE) {
    throw new AgeFormatError(
      version.startsWith(VERSION_PREFIX) ? "header: unsupported version" : "header: not an age file",
    );
  }
  const stanzas: Stanza[] = [];
  for (;;) {
    const lineStart = pos;
    const line = nextLine();
    if (line.startsWith(MAC_MARK)) {
      if (stanzas.length === 0) throw new AgeFormatError("header: no stanza");
      if (!line.startsWith(`${MAC_MARK} `)) throw new AgeFormatError("header: malformed MAC line");
      const mac = decodeBase64(line.slice(MAC_MARK.length + 1), "header MAC");
      if (mac.length !== MAC_BYTES) throw new AgeFormatError("header: MAC length");
      const macInput = bytes.slice(0, lineStart + MAC_MARK.length);
      return { header: { stanzas, mac, macInput }, length: pos };
    }
    if (!line.startsWith(STANZA_PREFIX)) throw new AgeFormatError("header: malformed stanza line");
    const args = line.slice(STANZA_PREFIX.length).split(" ");
    if (!args.every(isArgument)) throw new AgeFormatError("header: malformed stanza argument");
    stanzas.push({ args, body: parseBody(nextLine) });
  }
}

/** Body lines are full (64 columns) until one shorter line, possibly empty, ends the stanza. */
function parseBody(nextLine: () => string): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const line = nextLine();
    if (line.length > BODY_COLUMNS) throw new AgeFormatError("header: stanza body line too long");
    const part = decodeBase64(line, "stanza body");
    parts.push(part);
    size += part.length;
    if (line.length < BODY_COLUMNS) break;
  }
  const body = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    body.set(p, o);
    o += p.length;
  }
  return body;
}

/** The header bytes the MAC is computed over: version line, stanzas, then "---" (no space, no LF). */
export function formatHeaderMacInput(stanzas: readonly Stanza[]): Uint8Array {
  if (stanzas.length === 0) throw new AgeFormatError("header: no stanza");
  let text = `${VERSION_LINE}\n`;
  for (const { args, body } of stanzas) {
    if (args.length === 0 || !args.every(isArgument)) {
      throw new AgeFormatError("header: malformed stanza argument");
    }
    text += `${STANZA_PREFIX}${args.join(" ")}\n`;
    const b64 = encodeBase64(body);
    // `<=` emits the final short line, which is empty when the body fills whole lines.
    for (let i = 0; i <= b64.length; i += BODY_COLUMNS) text += `${b64.slice(i, i + BODY_COLUMNS)}\n`;
  }
  return new TextEncoder().encode(text + MAC_MARK);
}

/** The complete header: the MAC input followed by " <base64 MAC>\n". */
export function formatHeader(macInput: Uint8Array, mac: Uint8Array): Uint8Array {
  if (mac.length !== MAC_BYTES) throw new AgeFormatError("header: MAC length");
  const tail = new TextEncoder().encode(` ${encodeBase64(mac)}\n`);
  const out = new Uint8Array(macInput.length + tail.length);
  out.set(macInput);
  out.set(tail, macInput.length);
  return out;
}
