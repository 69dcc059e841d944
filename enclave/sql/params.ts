/**
 * Run-time parameter validation: every declared parameter present, nothing extra, each value of
 * its declared type, converted to the DuckDB value that is bound (never spliced into SQL).
 * Errors name the parameter and the problem, never the value.
 */
import { DuckDBDateValue, DuckDBTimestampValue } from "@duckdb/node-api";
import type { Parameter, ParameterType } from "../../protocol/contract/types.js";
import { ParameterError } from "./errors.js";

export type BoundValue = string | bigint | number | boolean | DuckDBDateValue | DuckDBTimestampValue;

export interface BoundParameter {
  name: string;
  type: ParameterType;
  value: BoundValue;
}

/** Largest VARCHAR parameter, in UTF-8 bytes. */
export const MAX_VARCHAR_BYTES = 4096;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2})?$/;
const MS_PER_DAY = 86_400_000;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Milliseconds since the epoch of a valid proleptic-Gregorian date, or undefined. */
function dayMillis(y: string, m: string, d: string): number | undefined {
  const ms = Date.UTC(Number(y), Number(m) - 1, Number(d));
  const back = new Date(ms);
  const ok =
    back.getUTCFullYear() === Number(y) &&
    back.getUTCMonth() + 1 === Number(m) &&
    back.getUTCDate() === Number(d);
  return ok && Number(y) >= 1 ? ms : undefined;
}

function toBigInt(value: unknown): bigint | undefined {
  let n: bigint | undefined;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^-?\d{1,19}$/.test(value)) n = BigInt(value);
  return n !== undefined && n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

function toTimestamp(value: unknown): DuckDBTimestampValue | undefined {
  const m = typeof value === "string" ? TIMESTAMP.exec(value) : null;
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s = "0", frac = "", zone = "Z"] = m;
  const day = dayMillis(y!, mo!, d!);
  if (day === undefined || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  let offsetMinutes = 0;
  if (zone !== "Z") {
    const [oh, om] = zone.slice(1).split(":").map(Number);
    if (oh! > 23 || om! > 59) return undefined;
    offsetMinutes = (zone.startsWith("-") ? -1 : 1) * (oh! * 60 + om!);
  }
  const ms = day + ((Number(h) * 60 + Number(mi) - offsetMinutes) * 60 + Number(s)) * 1000;
  return new DuckDBTimestampValue(BigInt(ms) * 1000n + BigInt(frac.padEnd(6, "0")));
}

function convert(type: ParameterType, value: unknown): BoundValue | undefined {
  switch (type) {
    case "VARCHAR":
      return typeof value === "string" &&
        !LONE_SURROGATE.test(value) &&
        Buffer.byteLength(value, "utf8") <= MAX_VARCHAR_BYTES
        ? value
        : undefined;
    case "BIGINT":
      return toBigInt(value);
    case "DOUBLE":
      return typeof value === "number" && Number.isFinite(value) ? value : undefined;
    case "BOOLEAN":
      return typeof value === "boolean" ? value : undefined;
    case "DATE": {
      const m = typeof value === "string" ? DATE.exec(value) : null;
      const ms = m ? dayMillis(m[1]!, m[2]!, m[3]!) : undefined;
      return ms === undefined ? undefined : new DuckDBDateValue(ms / MS_PER_DAY);
    }
    case "TIMESTAMP":
      return toTimestamp(value);
    default:
      return undefined;
  }
}

export function validateParameters(declared: Parameter[], params: unknown): BoundParameter[] {
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    throw new ParameterError("(all)", "parameters must be an object");
  }
  const given = params as Record<string, unknown>;
  const names = new Set(declared.map((p) => p.name));
  for (const key of Object.keys(given)) {
    if (!names.has(key)) throw new ParameterError(NAME.test(key) ? key : "(invalid name)", "not declared");
  }
  return declared.map((p) => {
    if (!Object.hasOwn(given, p.name) || given[p.name] === undefined || given[p.name] === null) {
      throw new ParameterError(p.name, "missing");
    }
    const value = convert(p.type, given[p.name]);
    if (value === undefined) throw new ParameterError(p.name, `not a valid ${p.type}`);
    return { name: p.name, type: p.type, value };
  });
}
