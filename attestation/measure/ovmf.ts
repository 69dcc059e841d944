/**
 * OVMF firmware parsing for launch measurement: the GUIDed footer table at the end of the
 * image and the SEV metadata it points to. Bytes to structures only; what each section means
 * for the digest is decided in snp.ts.
 */
import { MeasurementError } from "./errors.js";
import { guidFromBytes } from "./guid.js";

export const PAGE_SIZE = 4096;
const FOUR_GIB = 0x1_0000_0000;

const FOOTER_TABLE_GUID = "96b582de-1fb2-45f7-baea-a366c55a082d";
const SEV_ES_RESET_BLOCK_GUID = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
const SEV_HASH_TABLE_GUID = "7255371f-3a3b-4b04-927b-1da6efa8d454";
const SEV_METADATA_GUID = "dc886566-984a-4798-a75e-5585a7bf67cc";

/** Entry trailer: u16 size + GUID. */
const ENTRY_TRAILER_SIZE = 18;
/** The footer entry sits this many bytes before the end of the image (32 bytes of reset code follow). */
const FOOTER_END_FROM_FILE_END = 32;

const METADATA_SIGNATURE = 0x56455341; // "ASEV" read as u32 LE
const METADATA_HEADER_SIZE = 16;
const METADATA_DESC_SIZE = 12;

/** OVMF SEV metadata section types (OvmfPkg ResetVector SEV metadata). */
export const SectionType = {
  SnpSecMem: 1,
  SnpSecrets: 2,
  Cpuid: 3,
  SvsmCaa: 4,
  SnpKernelHashes: 0x10,
} as const;
export type SectionType = (typeof SectionType)[keyof typeof SectionType];

export interface MetadataSection {
  gpa: number;
  size: number;
  /** A SectionType once checkSections passed; raw u32 as read. */
  type: number;
}

export interface Ovmf {
  data: Uint8Array;
  /** Guest physical address of the first byte: the image ends at 4 GiB. */
  gpa: number;
  /** GUID (lower-case string) → entry data, from the footer table; empty when there is no table. */
  table: ReadonlyMap<string, Uint8Array>;
  /** SEV metadata sections in firmware order; empty when the firmware has none. */
  sections: readonly MetadataSection[];
}

function u16(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(off, true);
}

function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

function parseFooterTable(data: Uint8Array): Map<string, Uint8Array> {
  const table = new Map<string, Uint8Array>();
  const footerStart = data.length - FOOTER_END_FROM_FILE_END - ENTRY_TRAILER_SIZE;
  if (footerStart < 0) return table;
  if (guidFromBytes(data.subarray(footerStart + 2, footerStart + ENTRY_TRAILER_SIZE)) !== FOOTER_TABLE_GUID) {
    return table;
  }
  const tableSize = u16(data, footerStart);
  // sev-snp-measure treats a footer that claims less than itself as no table at all.
  if (tableSize < ENTRY_TRAILER_SIZE) return table;
  const bodyStart = footerStart - (tableSize - ENTRY_TRAILER_SIZE);
  if (bodyStart < 0) throw new MeasurementError("ovmf: footer table larger than the image");
  // Entries are chained backwards from the footer: each one ends with its size and GUID.
  let end = footerStart;
  while (end - bodyStart >= ENTRY_TRAILER_SIZE) {
    const trailer = end - ENTRY_TRAILER_SIZE;
    const entrySize = u16(data, trailer);
    if (entrySize < ENTRY_TRAILER_SIZE) throw new MeasurementError("ovmf: footer table entry size below 18");
    const start = end - entrySize;
    if (start < bodyStart) throw new MeasurementError("ovmf: footer table entry exceeds the table");
    table.set(guidFromBytes(data.subarray(trailer + 2, end)), data.subarray(start, trailer));
    end = start;
  }
  return table;
}

/**
 * The SEV metadata: a 16-byte header ("ASEV", u32 total size, u32 version, u32 count) and `count`
 * 12-byte descriptors, which must lie inside the header's own size (sev-snp-measure reads them from
 * `data[header + 16 : header + size]` and fails when one does not fit). Section types and ranges
 * are checked where the digest needs them (checkSections), as sev-snp-measure does, so a firmware
 * with odd sections still gets its `snp:ovmf-hash`.
 */
function parseMetadata(data: Uint8Array, entry: Uint8Array | undefined): MetadataSection[] {
  if (entry === undefined) return [];
  if (entry.length < 4) throw new MeasurementError("ovmf: SEV metadata entry too short");
  const header = data.length - u32(entry, 0);
  if (header < 0 || header + METADATA_HEADER_SIZE > data.length) {
    throw new MeasurementError("ovmf: SEV metadata offset outside the image");
  }
  if (u32(data, header) !== METADATA_SIGNATURE)
    throw new MeasurementError("ovmf: bad SEV metadata signature");
  const size = u32(data, header + 4);
  if (u32(data, header + 8) !== 1) throw new MeasurementError("ovmf: unsupported SEV metadata version");
  const count = u32(data, header + 12);
  const descs = header + METADATA_HEADER_SIZE;
  // The descriptors' room: up to the header's size, and never past the image.
  const room = Math.max(0, Math.min(header + size, data.length) - descs);
  if (count * METADATA_DESC_SIZE > room) {
    throw new MeasurementError("ovmf: SEV metadata header too small for its descriptors");
  }
  const sections: MetadataSection[] = [];
  for (let i = 0; i < count; i++) {
    const off = descs + i * METADATA_DESC_SIZE;
    sections.push({ gpa: u32(data, off), size: u32(data, off + 4), type: u32(data, off + 8) });
  }
  return sections;
}

/** Refuses unknown section types and ranges past 4 GiB; run before measuring the sections. */
export function checkSections(sections: readonly MetadataSection[]): void {
  const known = new Set<number>(Object.values(SectionType));
  for (const s of sections) {
    if (!known.has(s.type)) throw new MeasurementError("ovmf: unknown SEV metadata section type");
    // Metadata describes memory below 4 GiB; a range past it is a corrupt descriptor.
    if (s.gpa + s.size > FOUR_GIB) throw new MeasurementError("ovmf: SEV metadata section beyond 4 GiB");
  }
}

export function parseOvmf(data: Uint8Array): Ovmf {
  if (data.length === 0 || data.length % PAGE_SIZE !== 0) {
    throw new MeasurementError("ovmf: image size is not a non-zero multiple of 4096");
  }
  if (data.length > FOUR_GIB) throw new MeasurementError("ovmf: image larger than 4 GiB");
  const table = parseFooterTable(data);
  return {
    data,
    gpa: FOUR_GIB - data.length,
    table,
    sections: parseMetadata(data, table.get(SEV_METADATA_GUID)),
  };
}

/** EIP at which application processors start (SEV-ES reset block); refused when absent. */
export function apResetEip(ovmf: Ovmf): number {
  const entry = ovmf.table.get(SEV_ES_RESET_BLOCK_GUID);
  if (entry === undefined || entry.length < 4) throw new MeasurementError("ovmf: no SEV-ES reset block");
  return u32(entry, 0);
}

/** Where QEMU places the kernel/initrd/cmdline hashes table; undefined when the build has none. */
export function sevHashesTable(ovmf: Ovmf): { gpa: number; size: number } | undefined {
  const entry = ovmf.table.get(SEV_HASH_TABLE_GUID);
  if (entry === undefined || entry.length < 8) return undefined;
  const gpa = u32(entry, 0);
  const size = u32(entry, 4);
  return gpa === 0 || size === 0 ? undefined : { gpa, size };
}
