/**
 * RFC 4180 CSV, incrementally: records come out as soon as their line ends, so files of any
 * size stream through in constant memory. Quoted fields may hold commas, quotes ("") and line
 * breaks; CRLF and LF both end a record; blank lines are skipped. Text after a closing quote
 * (other than a separator) is an error.
 */
import { CsvFormatError } from "./errors.js";

type State = "field-start" | "unquoted" | "quoted" | "quote-in-quoted";

export class CsvParser {
  #state: State = "field-start";
  #field = "";
  #quoted = false;
  #record: string[] = [];
  #row = 1;
  #pendingCr = false;

  /** Feeds the next piece of text; returns the records it completed. */
  push(text: string): string[][] {
    const out: string[][] = [];
    for (const ch of text) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        if (ch === "\n") continue;
      }
      if (this.#state === "quoted") {
        if (ch === '"') this.#state = "quote-in-quoted";
        else this.#field += ch;
      } else if (this.#state === "quote-in-quoted" && ch === '"') {
        this.#field += '"';
        this.#state = "quoted";
      } else if (ch === "," || ch === "\n" || ch === "\r") {
        this.#separator(ch, out);
      } else if (this.#state === "quote-in-quoted") {
        throw new CsvFormatError(this.#row, "text after a closing quote");
      } else if (ch === '"' && this.#state === "field-start") {
        this.#state = "quoted";
        this.#quoted = true;
      } else {
        this.#field += ch;
        this.#state = "unquoted";
      }
    }
    return out;
  }

  /** The input ended: returns the last record if the text did not end with a line break. */
  end(): string[][] {
    if (this.#state === "quoted") throw new CsvFormatError(this.#row, "unterminated quoted field");
    const out: string[][] = [];
    this.#separator("\n", out);
    return out;
  }

  #separator(ch: string, out: string[][]): void {
    const blank = this.#record.length === 0 && this.#field === "" && !this.#quoted;
    this.#record.push(this.#field);
    this.#field = "";
    this.#quoted = false;
    this.#state = "field-start";
    if (ch === ",") return;
    if (ch === "\r") this.#pendingCr = true;
    if (!blank) {
      out.push(this.#record);
      this.#row++;
    }
    this.#record = [];
  }
}

export function parseCsv(text: string): string[][] {
  const p = new CsvParser();
  return [...p.push(text), ...p.end()];
}

function quote(field: string, only: boolean): string {
  // A lone empty field is quoted so the record is not read back as a blank line.
  return /[",\r\n]/.test(field) || (only && field === "") ? `"${field.replaceAll('"', '""')}"` : field;
}

/** One record as a CSV line (LF-terminated), quoting only the fields that need it. */
export function formatCsvRecord(fields: readonly string[]): string {
  return `${fields.map((f) => quote(f, fields.length === 1)).join(",")}\n`;
}
