/**
 * The extended-report certificate table (GHCB spec; Linux SNP_GET_EXT_REPORT and the configfs-tsm
 * `auxblob`): entries of {GUID (16 bytes, RFC 4122 byte order), u32 offset, u32 length}, little
 * endian, ended by an all-zero entry; offsets count from the start of the table.
 */
import { fromHex, isAllZero, toHex } from "../bytes.js";
import { EvidenceFormatError, UsageError } from "../errors.js";

export const GUID_VCEK = "63da758d-e664-4564-adc5-f4b93be8accd";
export const GUID_VLEK = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
export const GUID_ASK = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
export const GUID_ARK = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

const ENTRY = 24;

export interface CertTableEntry {
  /** Lower-case canonical text form. */
  guid: string;
  data: Uint8Array;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function guidText(b: Uint8Array): string {
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function bad(message: string): never {
  throw new EvidenceFormatError(message);
}

export function parseCertTable(table: Uint8Array): CertTableEntry[] {
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const raw: { guid: string; offset: number; length: number }[] = [];
  let at = 0;
  for (;;) {
    if (at + ENTRY > table.length) bad("cert table: no terminating entry");
    const entry = table.subarray(at, at + ENTRY);
    at += ENTRY;
    if (isAllZero(entry)) break;
    const guidBytes = entry.subarray(0, 16);
    if (isAllZero(guidBytes)) bad("cert table: entry with a zero GUID");
    raw.push({
      guid: guidText(guidBytes),
      offset: dv.getUint32(at - 8, true),
      length: dv.getUint32(at - 4, true),
    });
  }
  const headerEnd = at;
  const seen = new Set<string>();
  for (const e of raw) {
    if (seen.has(e.guid)) bad("cert table: duplicate GUID");
    seen.add(e.guid);
    if (e.length === 0) bad("cert table: empty entry");
    if (e.offset < headerEnd || e.offset + e.length > table.length) bad("cert table: entry out of bounds");
  }
  const byOffset = [...raw].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    if (prev.offset + prev.length > byOffset[i]!.offset) bad("cert table: entries overlap");
  }
  return raw.map((e) => ({ guid: e.guid, data: table.slice(e.offset, e.offset + e.length) }));
}

/** The table followed by each entry's data, in order; the inverse of parseCertTable. */
export function encodeCertTable(entries: CertTableEntry[]): Uint8Array {
  const headerEnd = (entries.length + 1) * ENTRY;
  const total = entries.reduce((n, e) => n + e.data.length, headerEnd);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const seen = new Set<string>();
  let offset = headerEnd;
  entries.forEach((e, i) => {
    const guid = e.guid.toLowerCase();
    if (!GUID_RE.test(guid) || isAllZero(fromHex(guid.replaceAll("-", ""))))
      usage("encodeCertTable: bad GUID");
    if (seen.has(guid)) usage("encodeCertTable: duplicate GUID");
    if (e.data.length === 0) usage("encodeCertTable: empty entry");
    seen.add(guid);
    out.set(fromHex(guid.replaceAll("-", "")), i * ENTRY);
    dv.setUint32(i * ENTRY + 16, offset, true);
    dv.setUint32(i * ENTRY + 20, e.data.length, true);
    out.set(e.data, offset);
    offset += e.data.length;
  });
  return out;
}

function usage(message: string): never {
  throw new UsageError(message);
}

/** The AMD certificates of a table by role; other GUIDs (e.g. a CRL) are ignored. */
export function certsFromTable(entries: CertTableEntry[]): {
  vcek?: Uint8Array;
  vlek?: Uint8Array;
  ask?: Uint8Array;
  ark?: Uint8Array;
} {
  const get = (g: string): Uint8Array | undefined => entries.find((e) => e.guid === g)?.data;
  const out: { vcek?: Uint8Array; vlek?: Uint8Array; ask?: Uint8Array; ark?: Uint8Array } = {};
  const pairs: [keyof typeof out, string][] = [
    ["vcek", GUID_VCEK],
    ["vlek", GUID_VLEK],
    ["ask", GUID_ASK],
    ["ark", GUID_ARK],
  ];
  for (const [k, g] of pairs) {
    const d = get(g);
    if (d) out[k] = d;
  }
  return out;
}
