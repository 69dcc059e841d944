/**
 * Identifier normalisation and hashing as the big ad platforms specify for customer-match
 * uploads (Google Ads Customer Match / Enhanced Conversions, Meta Conversions API), so that
 * two parties hashing the same person's email or phone get the same SHA-256 and join on it:
 *
 * - email: trim, lowercase; for gmail.com / googlemail.com (Google's rule, on by default) the
 *   local part loses its dots and any "+tag";
 * - phone: E.164, "+" then country code and subscriber number, digits only. A number without
 *   "+" (or "00") is national and needs a default country code; its trunk "0" is dropped
 *   (except for Italy, +39, where the leading 0 is part of the number); an international
 *   number's "(0)" trunk marker is dropped.
 *
 * Both are idempotent: normalising a normalised value returns it unchanged.
 */
import { sha256, toHex } from "../../attestation/bytes.js";
import { CsvParser, formatCsvRecord } from "./csv.js";
import { CsvFormatError, NormalizeError } from "./errors.js";

export type IdKind = "email" | "phone";

export interface NormalizeOptions {
  /** Remove dots and "+tag" from gmail.com/googlemail.com local parts (Google's rule). Default true. */
  gmailRule?: boolean;
  /** Country calling code (digits, e.g. "1", "44") for phone numbers written without one. */
  defaultCountryCode?: string;
}

const GMAIL_DOMAINS = new Set(["gmail.com", "googlemail.com"]);
const EMAIL = /^[^\s@]+@[^\s@.][^\s@]*\.[^\s@]+$/;

export function normalizeEmail(input: string, o: NormalizeOptions = {}): string {
  const email = input.trim().toLowerCase();
  if (!EMAIL.test(email)) throw new NormalizeError("not an email address");
  const at = email.lastIndexOf("@");
  let local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if ((o.gmailRule ?? true) && GMAIL_DOMAINS.has(domain)) {
    local = local.split("+")[0]!.replaceAll(".", "");
    if (local === "") throw new NormalizeError("not an email address");
  }
  return `${local}@${domain}`;
}

const PHONE_CHARS = /^\+?[0-9 ()./-]+$/;
const COUNTRY_CODE = /^[1-9][0-9]{0,2}$/;

export function normalizePhone(input: string, o: NormalizeOptions = {}): string {
  const text = input.trim();
  if (!PHONE_CHARS.test(text)) throw new NormalizeError("not a phone number");
  const digits = text.replace(/[^0-9]/g, "");
  // "+44 (0)20 ..." marks the national trunk 0, which is not dialled internationally.
  const international = text.replace(/\(0\)/g, "").replace(/[^0-9]/g, "");
  let e164: string;
  if (text.startsWith("+")) e164 = international;
  else if (digits.startsWith("00")) e164 = international.slice(2);
  else {
    const cc = o.defaultCountryCode?.replace(/^\+/, "");
    if (cc === undefined) throw new NormalizeError("phone number without country code");
    if (!COUNTRY_CODE.test(cc)) throw new NormalizeError("default country code must be 1 to 3 digits");
    e164 = cc + (cc === "39" ? digits : digits.replace(/^0+/, ""));
  }
  if (!/^[1-9][0-9]{6,14}$/.test(e164)) throw new NormalizeError("phone number is not E.164-sized");
  return `+${e164}`;
}

export function normalizeId(kind: IdKind, input: string, o: NormalizeOptions = {}): string {
  return kind === "email" ? normalizeEmail(input, o) : normalizePhone(input, o);
}

export type HashFn = (text: string) => string | Promise<string>;

/** SHA-256 of the UTF-8 text, lowercase hex (WebCrypto; Node callers may pass a faster one). */
export const sha256Hex: HashFn = async (text) => toHex(await sha256(new TextEncoder().encode(text)));

export async function hashId(
  kind: IdKind,
  input: string,
  o: NormalizeOptions = {},
  hash = sha256Hex,
): Promise<string> {
  return hash(normalizeId(kind, input, o));
}

export interface HashCsvOptions extends NormalizeOptions {
  /** Header name of the column to replace. */
  column: string;
  /** New header name of the hashed column (e.g. the contract's identity column); default unchanged. */
  as?: string;
  kind: IdKind;
  hash?: HashFn;
}

/**
 * Streams CSV text (header first), replacing `column` with the hash of each normalised value
 * (and its header with `as`, when given). Empty cells stay empty. A value that does not
 * normalise stops the run, naming its record and column.
 */
export async function* hashCsv(
  chunks: AsyncIterable<string> | Iterable<string>,
  o: HashCsvOptions,
): AsyncGenerator<string> {
  const parser = new CsvParser();
  const hash = o.hash ?? sha256Hex;
  let index = -1;
  let row = 0;
  const convert = async (records: string[][]): Promise<string> => {
    let out = "";
    for (const record of records) {
      row++;
      if (index < 0) {
        index = record.indexOf(o.column);
        if (index < 0) {
          throw new CsvFormatError(row, `header has no column ${o.column} (columns: ${record.join(", ")})`);
        }
        if (o.as !== undefined) {
          if (o.as !== o.column && record.includes(o.as))
            throw new CsvFormatError(row, `header already has a column ${o.as}`);
          record[index] = o.as;
        }
      } else {
        const value = record[index];
        if (value === undefined) throw new CsvFormatError(row, `no value for column ${o.column}`);
        if (value !== "") {
          try {
            record[index] = await hash(normalizeId(o.kind, value, o));
          } catch (e) {
            if (e instanceof NormalizeError) {
              throw new NormalizeError(`record ${row}, column ${o.column}: ${e.message}`);
            }
            throw e;
          }
        }
      }
      out += formatCsvRecord(record);
    }
    return out;
  };
  for await (const chunk of chunks) {
    const text = await convert(parser.push(chunk));
    if (text) yield text;
  }
  const last = await convert(parser.end());
  if (last) yield last;
  if (index < 0) throw new CsvFormatError(1, "no header");
}
