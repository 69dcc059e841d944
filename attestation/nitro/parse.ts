/** Parse layer entry: bytes → COSE_Sign1 envelope + typed attestation document. No crypto. */
import { type CoseSign1, decodeCoseSign1 } from "./cose.js";
import { decodeAttestationPayload, type NitroDocument } from "./document.js";

export interface ParsedNitro {
  cose: CoseSign1;
  document: NitroDocument;
}

export function parseNitro(bytes: Uint8Array): ParsedNitro {
  const cose = decodeCoseSign1(bytes);
  return { cose, document: decodeAttestationPayload(cose.payload) };
}
