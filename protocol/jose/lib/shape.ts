/** Small structural checks shared by the contract, envelope and audit parsers (no crypto). */

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Why `o` does not have exactly the `required` keys plus any of `optional`, or undefined when it
 * does. Unknown keys are refused so two readers can never give one document different meanings.
 */
export function keysProblem(
  o: Record<string, unknown>,
  required: readonly string[],
  optional: readonly string[] = [],
): string | undefined {
  for (const k of required) if (!Object.hasOwn(o, k)) return `missing field ${k}`;
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) return "unknown field";
  return undefined;
}

export const HEX64 = /^[0-9a-f]{64}$/;
/** Contract, party and query ids. */
export const PARTY_ID = /^[a-z][a-z0-9_-]{0,63}$/;
/** Dataset ids are DuckDB table names, so no "-". */
export const DATASET_ID = /^[a-z][a-z0-9_]{0,63}$/;
/** Request nonce: 128 random bits as lowercase hex. */
export const NONCE = /^[0-9a-f]{32}$/;

/** Parse UTF-8 JSON that must be an object; undefined for anything else. */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  return isPlainObject(v) ? v : undefined;
}

export function isPositiveSafeInteger(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) > 0;
}
