/**
 * The one CBOR decoder configuration for Nitro evidence. NSM emits indefinite-length maps
 * (2025 documents), so those are accepted; everything that could let two readers see different
 * values in the same bytes is refused: duplicate map keys, trailing bytes, tags, undefined,
 * integers beyond 2^53 and floats (no Nitro field is a float, and refusing them keeps a float
 * `timestamp` from passing as an integer).
 */

import type { DecodeOptions } from "cborg";
import { decode, Tokenizer, Type } from "cborg";
import { EvidenceFormatError } from "../errors.js";

const BASE_OPTIONS: DecodeOptions = {
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowIndefinite: true,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
};

/** Wraps cborg's tokenizer to refuse float tokens, which cborg itself cannot be told to do. */
class NoFloatTokenizer extends Tokenizer {
  override next(): ReturnType<Tokenizer["next"]> {
    const token = super.next();
    if (Type.equals(token.type, Type.float)) throw new Error("float not allowed");
    return token;
  }
}

/** Decodes exactly one CBOR item spanning all of `bytes`; `what` names the structure in errors. */
export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    const options = { ...BASE_OPTIONS };
    options.tokenizer = new NoFloatTokenizer(bytes, options);
    return decode(bytes, options);
  } catch (e) {
    // cborg throws plain Errors (and a RangeError on absurd nesting); all mean "not our CBOR".
    throw new EvidenceFormatError(`${what}: not well-formed CBOR`, { cause: e });
  }
}

/**
 * cborg hands out Node Buffers under Node; callers get plain Uint8Array views (same memory), so
 * values behave the same in Node and the browser (Buffer's slice, toString and equality differ).
 */
export function plainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
