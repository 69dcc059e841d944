/**
 * Numbers and hex exactly as sev-snp-measure (Python 3, argparse) reads them, so `cleanroom
 * measure` accepts and refuses the same command lines (CPython 3.11 `PyLong_FromUnicodeObject`,
 * `_PyUnicode_TransformDecimalAndSpaceToASCII`, `_PyBytes_FromHex`):
 *
 * `int(x)` (base 10: `--vcpus`, `--vcpu-family`, `--vcpu-model`, `--vcpu-stepping`) and
 * `int(x, 0)` (`--vcpu-sig`, `--guest-features`):
 * - surrounding whitespace is ignored; one optional sign (`+`/`-`), nothing between it and the digits;
 * - digits may be grouped by single underscores between digits (`1_000`); none leading or trailing;
 * - any Unicode decimal digit counts as its ASCII digit, Unicode whitespace as a space;
 * - base 10: decimal only; leading zeros are allowed (`int("04")` is 4);
 * - base 0: `0x`/`0o`/`0b` prefixes (any case, one underscore may follow the prefix); a decimal
 *   with a leading zero is refused unless its value is zero (`010` refused, `00` and `0_0` are 0);
 * - no fraction, no exponent, no `0x` under base 10 (`4.0`, `1e1`, `0x4` for --vcpus are refused);
 * - more than 4300 decimal digits is refused (Python's int max_str_digits).
 *
 * `bytes.fromhex(x)` (`--snp-ovmf-hash`): pairs of hex digits, either case; ASCII whitespace may
 * stand between pairs, never inside one; no `0x` prefix; any other character is refused.
 */

/** Py_ISSPACE: ASCII space, \t, \n, \v, \f, \r. */
const isAsciiSpace = (c: string): boolean => c === " " || (c >= "\t" && c <= "\r");

/** Py_UNICODE_ISSPACE above ASCII (Unicode White_Space in CPython's table). */
const UNICODE_SPACES = new Set([
  0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const ND = /^\p{Nd}$/u;
const isDecimalDigit = (cp: number): boolean =>
  cp >= 0 && cp <= 0x10ffff && ND.test(String.fromCodePoint(cp));

/**
 * The value of a Unicode decimal digit: Unicode encodes them in contiguous runs of ten, 0 to 9,
 * so the offset from the start of its contiguous block, modulo ten, is the digit.
 */
function unicodeDigit(cp: number): number | undefined {
  if (!isDecimalDigit(cp)) return undefined;
  let start = cp;
  while (isDecimalDigit(start - 1)) start--;
  return (cp - start) % 10;
}

/** `_PyUnicode_TransformDecimalAndSpaceToASCII`; undefined where Python gives up ('?'). */
function toAscii(s: string): string | undefined {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out += ch;
    else if (UNICODE_SPACES.has(cp)) out += " ";
    else {
      const d = unicodeDigit(cp);
      if (d === undefined) return undefined;
      out += String(d);
    }
  }
  return out;
}

const DIGIT_VALUE = (c: string): number => {
  const n = Number.parseInt(c, 36);
  return Number.isNaN(n) || c.length !== 1 ? 99 : n;
};

const MAX_STR_DIGITS = 4300;

/** Python's `int(s)` (base 10) or `int(s, 0)`; undefined where Python raises ValueError. */
export function pythonInt(input: string, base: 10 | 0): bigint | undefined {
  const s = toAscii(input);
  if (s === undefined) return undefined;
  let i = 0;
  while (i < s.length && isAsciiSpace(s[i]!)) i++;
  let negative = false;
  if (s[i] === "+") i++;
  else if (s[i] === "-") {
    negative = true;
    i++;
  }
  let radix = 10;
  let errorIfNonzero = false;
  if (base === 0) {
    const p = s[i + 1]?.toLowerCase();
    if (s[i] !== "0") radix = 10;
    else if (p === "x") radix = 16;
    else if (p === "o") radix = 8;
    else if (p === "b") radix = 2;
    else errorIfNonzero = true;
    if (radix !== 10) {
      i += 2;
      if (s[i] === "_") i++;
    }
  }
  if (s[i] === "_") return undefined;
  let digits = "";
  let prev = "";
  while (i < s.length && (DIGIT_VALUE(s[i]!) < radix || s[i] === "_")) {
    const c = s[i]!;
    if (c === "_" && prev === "_") return undefined;
    if (c !== "_") digits += c;
    prev = c;
    i++;
  }
  if (prev === "_" || digits.length === 0) return undefined;
  while (i < s.length && isAsciiSpace(s[i]!)) i++;
  if (i !== s.length) return undefined;
  if (radix === 10 && digits.length > MAX_STR_DIGITS) return undefined;
  const prefix = radix === 16 ? "0x" : radix === 8 ? "0o" : radix === 2 ? "0b" : "";
  const value = BigInt(prefix + digits);
  if (errorIfNonzero && value !== 0n) return undefined;
  return negative ? -value : value;
}

/** Python's `bytes.fromhex(s)`; undefined where Python raises ValueError. */
export function pythonFromHex(s: string): Uint8Array | undefined {
  const out: number[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && isAsciiSpace(s[i]!)) i++;
    if (i >= s.length) break;
    const top = /^[0-9a-fA-F]$/.test(s[i]!) ? Number.parseInt(s[i]!, 16) : -1;
    const bot = i + 1 < s.length && /^[0-9a-fA-F]$/.test(s[i + 1]!) ? Number.parseInt(s[i + 1]!, 16) : -1;
    if (top < 0 || bot < 0) return undefined;
    out.push(top * 16 + bot);
    i += 2;
  }
  return Uint8Array.from(out);
}
