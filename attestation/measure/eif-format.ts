/**
 * AWS Nitro Enclaves image file (EIF) layout: a 548-byte big-endian header with a section
 * table and a CRC-32, then 12-byte section headers each followed by their data. Parsing only:
 * bytes to a typed image, refusing anything outside the layout with EifFormatError.
 */
import { bytesEqual } from "../bytes.js";
import { crc32 } from "./crc32.js";
import { EifFormatError } from "./errors.js";

export const EIF_MAGIC = new Uint8Array([0x2e, 0x65, 0x69, 0x66]); // ".eif"
export const EIF_VERSION = 4;
export const EIF_HEADER_SIZE = 548;
export const SECTION_HEADER_SIZE = 12;
export const MAX_SECTIONS = 32;
const MAX_SIGNATURE_SIZE = 32 * 1024;
const OLDEST_VERSION = 2;

/** Header field offsets. */
export const H = {
  magic: 0x000,
  version: 0x004,
  flags: 0x006,
  defaultMem: 0x008,
  defaultCpus: 0x010,
  reserved: 0x018,
  numSections: 0x01a,
  sectionOffsets: 0x01c,
  sectionSizes: 0x11c,
  unused: 0x21c,
  crc32: 0x220,
} as const;

export const EifSectionType = { Kernel: 1, Cmdline: 2, Ramdisk: 3, Signature: 4, Metadata: 5 } as const;
export type EifSectionType = (typeof EifSectionType)[keyof typeof EifSectionType];

/** Header flag bit 0: the image is for aarch64 (else x86_64). */
export const FLAG_AARCH64 = 1;

export interface EifSection {
  type: EifSectionType;
  data: Uint8Array;
}

export interface Eif {
  version: number;
  arch: "x86_64" | "aarch64";
  defaultMem: bigint;
  defaultCpus: bigint;
  sections: EifSection[];
  crc32: number;
  kernel: Uint8Array;
  cmdline: Uint8Array;
  ramdisks: Uint8Array[];
  metadata: Uint8Array | undefined;
  signature: Uint8Array | undefined;
}

function fail(message: string): never {
  throw new EifFormatError(message);
}

function readSections(b: Uint8Array, v: DataView, count: number): EifSection[] {
  const sections: EifSection[] = [];
  // Sections follow the header and each other with no gaps, so every byte is covered by the CRC.
  let pos = EIF_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const offset = v.getBigUint64(H.sectionOffsets + i * 8);
    const size = v.getBigUint64(H.sectionSizes + i * 8);
    if (offset !== BigInt(pos)) fail("eif: section offsets not contiguous");
    if (BigInt(pos + SECTION_HEADER_SIZE) + size > BigInt(b.length)) fail("eif: section exceeds the file");
    const type = v.getUint16(pos);
    if (type < EifSectionType.Kernel || type > EifSectionType.Metadata) fail("eif: unknown section type");
    if (v.getUint16(pos + 2) !== 0) fail("eif: section flags not zero");
    if (v.getBigUint64(pos + 4) !== size) fail("eif: section size differs from the header table");
    const start = pos + SECTION_HEADER_SIZE;
    sections.push({ type: type as EifSectionType, data: b.subarray(start, start + Number(size)) });
    pos = start + Number(size);
  }
  if (pos !== b.length) fail("eif: trailing bytes after the last section");
  for (let i = count; i < MAX_SECTIONS; i++) {
    if (v.getBigUint64(H.sectionOffsets + i * 8) !== 0n || v.getBigUint64(H.sectionSizes + i * 8) !== 0n) {
      fail("eif: unused section table slot not zero");
    }
  }
  return sections;
}

function checkSectionSet(version: number, sections: EifSection[]): void {
  const count = (t: EifSectionType): number => sections.filter((s) => s.type === t).length;
  if (count(EifSectionType.Kernel) !== 1) fail("eif: need exactly one kernel section");
  if (count(EifSectionType.Cmdline) !== 1) fail("eif: need exactly one cmdline section");
  if (count(EifSectionType.Ramdisk) < 1) fail("eif: no ramdisk section");
  if (count(EifSectionType.Signature) > 1) fail("eif: more than one signature section");
  if (count(EifSectionType.Metadata) > 1) fail("eif: more than one metadata section");
  if (count(EifSectionType.Signature) === 1 && version < 3) fail("eif: signature section needs version 3");
  if (count(EifSectionType.Metadata) !== (version >= 4 ? 1 : 0))
    fail("eif: metadata section required from version 4 only");
  const kernelAt = sections.findIndex((s) => s.type === EifSectionType.Kernel);
  if (sections.findIndex((s) => s.type === EifSectionType.Ramdisk) < kernelAt)
    fail("eif: ramdisk before the kernel");
  const sig = sections.find((s) => s.type === EifSectionType.Signature);
  if (sig !== undefined && sig.data.length > MAX_SIGNATURE_SIZE) fail("eif: signature section too large");
}

export function parseEif(b: Uint8Array): Eif {
  if (b.length < EIF_HEADER_SIZE) fail("eif: shorter than the header");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (!bytesEqual(b.subarray(0, 4), EIF_MAGIC)) fail("eif: bad magic");
  const version = v.getUint16(H.version);
  if (version < OLDEST_VERSION || version > EIF_VERSION) fail("eif: unsupported version");
  const flags = v.getUint16(H.flags);
  if ((flags & ~FLAG_AARCH64) !== 0) fail("eif: reserved flag bits set");
  if (v.getUint16(H.reserved) !== 0 || v.getUint32(H.unused) !== 0)
    fail("eif: reserved header field not zero");
  const count = v.getUint16(H.numSections);
  if (count < 2 || count > MAX_SECTIONS) fail("eif: section count out of range");
  const sections = readSections(b, v, count);
  // The CRC covers everything but its own four bytes: header, then section headers and data.
  const crc = v.getUint32(H.crc32);
  if (crc32(b.subarray(0, H.crc32), b.subarray(EIF_HEADER_SIZE)) !== crc) fail("eif: CRC-32 mismatch");
  checkSectionSet(version, sections);
  const only = (t: EifSectionType): Uint8Array | undefined => sections.find((s) => s.type === t)?.data;
  return {
    version,
    arch: flags & FLAG_AARCH64 ? "aarch64" : "x86_64",
    defaultMem: v.getBigUint64(H.defaultMem),
    defaultCpus: v.getBigUint64(H.defaultCpus),
    sections,
    crc32: crc,
    kernel: only(EifSectionType.Kernel)!,
    cmdline: only(EifSectionType.Cmdline)!,
    ramdisks: sections.filter((s) => s.type === EifSectionType.Ramdisk).map((s) => s.data),
    metadata: only(EifSectionType.Metadata),
    signature: only(EifSectionType.Signature),
  };
}
