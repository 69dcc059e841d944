/**
 * A local check of a CSV file against its dataset's declaration in the contract, before anything
 * is encrypted or uploaded: the file is streamed once, in constant memory, and the first problems
 * are reported by line and column in words a data analyst can act on (the enclave's own errors
 * must not carry data, so this is where the details are). It follows the dialect the enclave
 * loads (docs/INGEST.md): UTF-8, comma separator, `"` quoting, a header naming the declared
 * columns in order, values DuckDB reads as the declared types, and for a "sha256-hex" dataset
 * identities of 64 lower-case hex characters. The enclave stays the judge: a file that passes
 * here can still be refused there, and this check never changes the file. Values are described,
 * never quoted, so reports can be pasted into a ticket.
 */
import type { ColumnType, Dataset } from "../../protocol/contract/types.js";

export type CheckCode =
  | "EMPTY"
  | "NOT_CSV"
  | "NOT_PARQUET"
  | "ENCODING"
  | "SEPARATOR"
  | "HEADER_CASE"
  | "HEADER_MISSING"
  | "HEADER_EXTRA"
  | "HEADER_ORDER"
  | "HEADER_DUPLICATE"
  | "NO_ROWS"
  | "FIELDS"
  | "QUOTE"
  | "VALUE"
  | "IDENTITY"
  | "LINE_ENDING";

export interface CheckProblem {
  code: CheckCode;
  /** Line of the file (1 is the header), where the record starts. */
  line?: number;
  /** Data row (1 is the first row after the header), as the enclave counts them. */
  row?: number;
  column?: string;
  message: string;
}

export interface CheckReport {
  dataset: string;
  /** True when nothing was found that the enclave would refuse. */
  ok: boolean;
  /** Data rows read (all of them, also past the problems listed). */
  rows: number;
  bytes: number;
  /** The first problems, in file order, at most `maxProblems`. */
  problems: CheckProblem[];
  /** Problems of each kind in the whole file (the list above shows the first ones). */
  counts: Partial<Record<CheckCode, number>>;
  /** Rows without an identity: not an error, but the enclave drops them at load. */
  rowsWithoutIdentity: number;
}

export interface CheckOptions {
  /** Problems listed at most (every problem is still counted). Default 10. */
  maxProblems?: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const NUMBER = /^[+-]?(?:\d(?:_?\d)*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const HEX_INT = /^[+-]?0[xX][0-9a-fA-F]+$/;
const SPECIAL_DOUBLE = /^[+-]?(?:inf|infinity|nan)$/i;
const BOOLEAN = /^(?:true|false|t|f|yes|no|y|n|1|0)$/i;
const DATE = /^(\d{1,4})[-/](\d{1,2})[-/](\d{1,2})$/;
const TIMESTAMP =
  /^(\d{1,4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const INT_RANGE: Partial<Record<ColumnType, number>> = { INTEGER: 2 ** 31, BIGINT: 2 ** 63 };

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A proleptic-Gregorian day, by arithmetic (this runs once per value of millions of rows). */
function validDay(y: string, m: string, d: string): boolean {
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 && leap ? 29 : MONTH_DAYS[month - 1]!);
}

/** Why `value` (non-empty) is not of `type` as DuckDB reads it, or undefined when it is. */
export function valueProblem(type: ColumnType, raw: string): string | undefined {
  const value = raw.trim();
  const hint = () =>
    /^[+-]?\d+,\d+$/.test(value)
      ? " (a decimal comma: write it with a point, e.g. 12.50)"
      : /^[$€£¥]|[$€£¥]$/.test(value)
        ? " (a currency sign: write the number alone)"
        : /^\d{1,3}(?:[ ,.']\d{3})+(?:[.,]\d+)?$/.test(value)
          ? " (thousands separators: write the digits alone)"
          : "";
  switch (type) {
    case "VARCHAR":
      return undefined;
    case "BIGINT":
    case "INTEGER": {
      if (HEX_INT.test(value)) return undefined;
      if (!NUMBER.test(value)) return `not a whole number${hint()}`;
      const n = Number(value.replaceAll("_", ""));
      return Math.abs(n) >= INT_RANGE[type]! ? `out of range for ${type}` : undefined;
    }
    case "DOUBLE":
      return NUMBER.test(value) || SPECIAL_DOUBLE.test(value) ? undefined : `not a number${hint()}`;
    case "BOOLEAN":
      return BOOLEAN.test(value) ? undefined : "not true or false";
    case "DATE": {
      const m = DATE.exec(value);
      if (m && validDay(m[1]!, m[2]!, m[3]!)) return undefined;
      return /^\d{1,2}[./-]\d{1,2}[./-]\d{4}$/.test(value)
        ? "a day-first or month-first date: write dates as YYYY-MM-DD"
        : "not a date YYYY-MM-DD";
    }
    case "TIMESTAMP": {
      const m = TIMESTAMP.exec(value);
      const clock = m && Number(m[4] ?? 0) <= 23 && Number(m[5] ?? 0) <= 59 && Number(m[6] ?? 0) <= 59;
      if (m && clock && validDay(m[1]!, m[2]!, m[3]!)) return undefined;
      return /^\d{1,2}[./-]\d{1,2}[./-]\d{4}/.test(value)
        ? "a day-first or month-first date: write times as YYYY-MM-DD hh:mm:ss"
        : "not a time YYYY-MM-DD hh:mm:ss";
    }
    default:
      return undefined;
  }
}

/** What an identity that is not a SHA-256 hex looks like, and what to do about it. */
function identityProblem(value: string, dataset: Dataset): string {
  const c = dataset.identityColumn;
  const v = value.trim();
  const hash = `hash the column first: cleanroom hash-ids --column ${c} --kind`;
  if (v.includes("@")) return `an e-mail address in the clear: ${hash} email --as ${c} IN.csv OUT.csv`;
  if (/^\+?[\d\s().-]{7,}$/.test(v))
    return `a phone number in the clear: ${hash} phone --as ${c} IN.csv OUT.csv`;
  if (/^[0-9a-fA-F]{64}$/.test(v)) {
    return v !== value
      ? "a SHA-256 with spaces around it: remove them"
      : "an upper-case SHA-256: write it in lower case (hash-ids does)";
  }
  if (/^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{40}$/.test(v))
    return "an MD5 or SHA-1 hash: the contract asks for SHA-256";
  return "not a SHA-256 (64 lower-case hex characters)";
}

const SPECIAL = /[",\r\n]/g;
const SEPARATORS = new Set([",", "\r", "\n"]);

/** Line breaks in a quoted stretch: LF, CR LF, or a lone CR, each counted once. */
function lineBreaks(s: string): number {
  let n = 0;
  for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) n++;
  for (let i = s.indexOf("\r"); i >= 0; i = s.indexOf("\r", i + 1)) if (s[i + 1] !== "\n") n++;
  return n;
}

/** Records of a CSV text stream with the line each starts on; never throws on malformed input. */
class Records {
  #field = "";
  #record: string[] = [];
  #quoted = false;
  #afterQuote = false;
  #wasQuoted = false;
  #pendingCr = false;
  #line = 1;
  #start = 1;
  /** Set when a quote is followed by something other than a separator (reported once). */
  strayQuoteLine: number | undefined;

  /** How each line outside quotes ends (blank lines too), with its line number. */
  constructor(private readonly onLineEnd: (end: LineEnd, line: number) => void) {}

  /**
   * Feeds text; calls `onRecord` for each completed record. Plain stretches of a field are found
   * with one regex search and copied as one slice, so large files pass at the speed of the scan.
   */
  push(text: string, onRecord: (fields: string[], line: number) => void): void {
    let i = 0;
    while (i < text.length) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        this.onLineEnd(text[i] === "\n" ? "CRLF" : "CR", this.#line - 1);
        if (text[i] === "\n") {
          i++;
          continue;
        }
      }
      if (this.#quoted) {
        const q = text.indexOf('"', i);
        const part = q < 0 ? text.slice(i) : text.slice(i, q);
        this.#line += lineBreaks(part);
        this.#field += part;
        if (q < 0) return;
        this.#quoted = false;
        this.#afterQuote = true;
        i = q + 1;
        continue;
      }
      if (this.#afterQuote) {
        this.#afterQuote = false;
        if (text[i] === '"') {
          this.#field += '"';
          this.#quoted = true;
          i++;
          continue;
        }
        if (!SEPARATORS.has(text[i]!)) this.strayQuoteLine ??= this.#start;
      }
      SPECIAL.lastIndex = i;
      const found = SPECIAL.exec(text);
      const at = found ? found.index : text.length;
      if (at > i) this.#field += text.slice(i, at);
      if (!found) return;
      i = at + 1;
      const ch = found[0];
      if (ch === '"') {
        // A quote opens a quoted field only at its start; elsewhere it is a character of it.
        if (this.#field === "") {
          this.#quoted = true;
          this.#wasQuoted = true;
        } else this.#field += ch;
        continue;
      }
      this.#record.push(this.#field);
      this.#field = "";
      if (ch === ",") continue;
      const blank = this.#record.length === 1 && this.#record[0] === "" && !this.#wasQuoted;
      if (!blank) onRecord(this.#record, this.#start);
      this.#record = [];
      this.#wasQuoted = false;
      if (ch === "\r") this.#pendingCr = true;
      else this.onLineEnd("LF", this.#line);
      this.#line++;
      this.#start = this.#line;
    }
  }

  /** The end of the input: the last record, and whether a quoted field was left open. */
  end(onRecord: (fields: string[], line: number) => void): { openQuoteLine?: number } {
    if (this.#pendingCr) this.onLineEnd("CR", this.#line - 1);
    if (this.#quoted) return { openQuoteLine: this.#start };
    if (this.#field !== "" || this.#record.length > 0 || this.#wasQuoted) {
      this.#record.push(this.#field);
      onRecord(this.#record, this.#start);
    }
    return {};
  }

  /** Lines seen so far (for problems found while decoding). */
  get line(): number {
    return this.#line;
  }
}

type LineEnd = "LF" | "CRLF" | "CR";

const list = (names: readonly string[]) => names.join(", ");

/** Checks the CSV bytes of `chunks` against `dataset`. */
export async function checkCsv(
  chunks: AsyncIterable<Uint8Array>,
  dataset: Dataset,
  o: CheckOptions = {},
): Promise<CheckReport> {
  const max = o.maxProblems ?? 10;
  const report: CheckReport = {
    dataset: dataset.id,
    ok: true,
    rows: 0,
    bytes: 0,
    problems: [],
    counts: {},
    rowsWithoutIdentity: 0,
  };
  const add = (p: CheckProblem) => {
    report.ok = false;
    report.counts[p.code] = (report.counts[p.code] ?? 0) + 1;
    if (report.problems.length < max) report.problems.push(p);
  };
  const declared = dataset.columns.map((c) => c.name);
  const identity = declared.indexOf(dataset.identityColumn);
  const sha256 = dataset.identityFormat === "sha256-hex";
  let stop = false;
  let header: string[] | undefined;

  const onRecord = (fields: string[], line: number) => {
    if (stop) return;
    if (!header) {
      header = fields;
      stop = !checkHeader(fields, line);
      return;
    }
    report.rows++;
    const row = report.rows;
    if (fields.length !== declared.length) {
      const semicolon = fields.some((v) => v.includes(";"))
        ? " (is ';' the separator? the clean room reads ',')"
        : "";
      add({
        code: "FIELDS",
        line,
        row,
        message: `${fields.length} values, the header has ${declared.length}${semicolon}`,
      });
      return;
    }
    for (const [i, c] of dataset.columns.entries()) {
      const value = fields[i]!;
      if (i === identity) {
        if (value === "") report.rowsWithoutIdentity++;
        else if (sha256 && !SHA256_HEX.test(value)) {
          add({ code: "IDENTITY", line, row, column: c.name, message: identityProblem(value, dataset) });
        }
        continue;
      }
      if (value === "") continue;
      const why = valueProblem(c.type, value);
      if (why) add({ code: "VALUE", line, row, column: c.name, message: `${c.type} column: ${why}` });
    }
  };

  /** False when the header is wrong in a way that makes the rows unreadable by column. */
  const checkHeader = (raw: string[], line: number): boolean => {
    const names = raw.map((n, i) => (i === 0 ? n.replace(/^\uFEFF/, "") : n).trim());
    if (names.length === 1 && declared.length > 1) {
      for (const [sep, what] of [
        [";", "';' (semicolons)"],
        ["\t", "tabs"],
        ["|", "'|' (pipes)"],
      ] as const) {
        if (names[0]!.includes(sep)) {
          add({
            code: "SEPARATOR",
            line,
            message: `the columns are separated by ${what}; the clean room reads comma-separated files: export the file with ',' as the separator`,
          });
          return false;
        }
      }
    }
    let good = true;
    const seen = new Set<string>();
    for (const n of names) {
      if (seen.has(n)) {
        add({ code: "HEADER_DUPLICATE", line, column: n, message: `the header names column ${n} twice` });
        good = false;
      }
      seen.add(n);
    }
    const exact = new Set(names);
    const missing: string[] = [];
    for (const d of declared) {
      if (exact.has(d)) continue;
      const other = names.find((n) => n.toLowerCase() === d.toLowerCase());
      if (other !== undefined) {
        add({
          code: "HEADER_CASE",
          line,
          column: d,
          message: `the header writes ${other}; the contract declares ${d} (column names are case-sensitive)`,
        });
      } else missing.push(d);
      good = false;
    }
    const lower = new Set(declared.map((d) => d.toLowerCase()));
    const extra = names.filter((n) => !declared.includes(n) && !lower.has(n.toLowerCase()));
    if (missing.length) {
      // An identity column still in the clear under its own name: say how to hash and rename it.
      const raw = missing.includes(dataset.identityColumn)
        ? extra.find((n) => /mail|phone|mobile|msisdn/i.test(n))
        : undefined;
      const kind = raw && /mail/i.test(raw) ? "email" : "phone";
      const fix = raw
        ? `; to hash ${raw} into ${dataset.identityColumn}: cleanroom hash-ids --column ${raw} --kind ${kind} --as ${dataset.identityColumn} IN.csv OUT.csv`
        : "";
      add({
        code: "HEADER_MISSING",
        line,
        message: `missing column${missing.length > 1 ? "s" : ""} ${list(missing)} (dataset ${dataset.id} declares ${list(declared)})${fix}`,
      });
    }
    if (extra.length) {
      add({
        code: "HEADER_EXTRA",
        line,
        message: `column${extra.length > 1 ? "s" : ""} ${list(extra)} ${extra.length > 1 ? "are" : "is"} not in the contract (dataset ${dataset.id} declares ${list(declared)}): remove ${extra.length > 1 ? "them" : "it"}`,
      });
      good = false;
    }
    if (good && names.some((n, i) => n !== declared[i])) {
      add({
        code: "HEADER_ORDER",
        line,
        message: `the columns are in another order: the contract has ${list(declared)}; the file has ${list(names)}`,
      });
      good = false;
    }
    return good;
  };

  // The enclave reads every line with the header line's ending (docs/INGEST.md): LF or CRLF.
  let lineEnd: LineEnd | undefined;
  const records = new Records((end, line) => {
    if (stop) return;
    if (lineEnd === undefined) {
      lineEnd = end;
      if (end === "CR") {
        add({
          code: "LINE_ENDING",
          line,
          message: "the header line ends with a lone CR: save the file with LF or CRLF line endings",
        });
      }
    } else if (end !== lineEnd) {
      add({
        code: "LINE_ENDING",
        line,
        message: `the line ends with ${end} where the header line ends with ${lineEnd}: save the file with one line ending throughout`,
      });
    }
  });
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let first = true;
  for await (const chunk of chunks) {
    if (stop) {
      report.bytes += chunk.length;
      continue;
    }
    if (first && chunk.length > 0) {
      first = false;
      const kind = binaryKind(chunk);
      if (kind) {
        add({
          code: "NOT_CSV",
          line: 1,
          message: `this is ${kind}, not a CSV file${dataset.format === "csv" ? ` (dataset ${dataset.id} is declared as CSV)` : ""}`,
        });
        stop = true;
      }
    }
    report.bytes += chunk.length;
    if (stop) continue;
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      // The line of the first byte that is not UTF-8: the text before it, decoded leniently.
      const lenient = new TextDecoder("utf-8").decode(chunk);
      const before = lenient.slice(0, Math.max(0, lenient.indexOf("\uFFFD")));
      add({
        code: "ENCODING",
        line: records.line + (before.match(/\n/g)?.length ?? 0),
        message:
          'the file is not UTF-8 text (it looks like Latin-1 or Windows-1252, as Excel\'s plain "CSV" saves it): ' +
          'save it as "CSV UTF-8", or convert it with iconv -f latin1 -t utf-8',
      });
      stop = true;
      continue;
    }
    records.push(text, onRecord);
  }
  if (report.bytes === 0) {
    add({ code: "EMPTY", message: "the file is empty: no header and no rows" });
    return report;
  }
  if (!stop) {
    try {
      records.push(decoder.decode(), onRecord);
    } catch {
      add({
        code: "ENCODING",
        line: records.line,
        message: "the file ends in the middle of a UTF-8 character",
      });
      return report;
    }
    const { openQuoteLine } = records.end(onRecord);
    if (openQuoteLine !== undefined) {
      add({
        code: "QUOTE",
        line: openQuoteLine,
        message: 'a quoted value starts here and never ends (a missing closing ")',
      });
    }
    if (records.strayQuoteLine !== undefined) {
      add({
        code: "QUOTE",
        line: records.strayQuoteLine,
        message: 'text after a closing quote: a quote inside a quoted value must be doubled ("")',
      });
    }
    if (header && !stop && report.rows === 0) {
      add({
        code: "NO_ROWS",
        line: 2,
        message: "the file has a header but no data rows: nothing would be loaded",
      });
    }
  }
  return report;
}

/** Files that are not text at all, by their first bytes. */
function binaryKind(b: Uint8Array): string | undefined {
  const starts = (...sig: number[]) => sig.every((x, i) => b[i] === x);
  if (starts(0x50, 0x41, 0x52, 0x31)) return "a Parquet file";
  if (starts(0x1f, 0x8b)) return "a gzip-compressed file (uncompress it first)";
  if (starts(0x50, 0x4b, 0x03, 0x04)) return "a ZIP file, e.g. an Excel workbook (export it as CSV UTF-8)";
  if (starts(0xd0, 0xcf, 0x11, 0xe0)) return "an old Excel workbook (export it as CSV UTF-8)";
  if (starts(0x61, 0x67, 0x65, 0x2d, 0x65, 0x6e, 0x63)) return "an age-encrypted file (check the plaintext)";
  return undefined;
}
