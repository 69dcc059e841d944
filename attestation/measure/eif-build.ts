/**
 * Deterministic EIF writer in eif_build/nitro-cli order (kernel, cmdline, metadata, ramdisks,
 * then signature): the same parts always give the same bytes, so an operator's published image
 * can be rebuilt and compared byte for byte.
 */
import { concatBytes } from "../bytes.js";
import { crc32 } from "./crc32.js";
import {
  EIF_HEADER_SIZE,
  EIF_MAGIC,
  EIF_VERSION,
  EifSectionType,
  FLAG_AARCH64,
  H,
  MAX_SECTIONS,
  SECTION_HEADER_SIZE,
} from "./eif-format.js";
import { EifFormatError } from "./errors.js";

export interface EifParts {
  kernel: Uint8Array;
  /** Kernel command line; stored as its UTF-8 bytes without a terminating NUL. */
  cmdline: string;
  ramdisks: Uint8Array[];
  /** Metadata JSON bytes, or a value written as compact JSON. Pin its build time for reproducible files. */
  metadata: Uint8Array | Record<string, unknown>;
  /** An already encoded signature section (CBOR), when the image is signed. */
  signature?: Uint8Array;
  arch?: "x86_64" | "aarch64";
}

/** What eif_build writes; the Nitro stack does not use these values. */
const DEFAULT_MEM = 1n << 30n;
const DEFAULT_CPUS = 2n;

function section(type: EifSectionType, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(SECTION_HEADER_SIZE + data.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, type);
  v.setBigUint64(4, BigInt(data.length));
  out.set(data, SECTION_HEADER_SIZE);
  return out;
}

export function buildEif(parts: EifParts): Uint8Array {
  if (parts.ramdisks.length === 0) throw new EifFormatError("eif: no ramdisk section");
  const utf8 = new TextEncoder();
  const metadata =
    parts.metadata instanceof Uint8Array ? parts.metadata : utf8.encode(JSON.stringify(parts.metadata));
  const list: [EifSectionType, Uint8Array][] = [
    [EifSectionType.Kernel, parts.kernel],
    [EifSectionType.Cmdline, utf8.encode(parts.cmdline)],
    [EifSectionType.Metadata, metadata],
    ...parts.ramdisks.map((r): [EifSectionType, Uint8Array] => [EifSectionType.Ramdisk, r]),
    ...(parts.signature === undefined
      ? []
      : [[EifSectionType.Signature, parts.signature] as [EifSectionType, Uint8Array]]),
  ];
  if (list.length > MAX_SECTIONS) throw new EifFormatError("eif: section count out of range");

  const header = new Uint8Array(EIF_HEADER_SIZE);
  const v = new DataView(header.buffer);
  header.set(EIF_MAGIC, H.magic);
  v.setUint16(H.version, EIF_VERSION);
  v.setUint16(H.flags, parts.arch === "aarch64" ? FLAG_AARCH64 : 0);
  v.setBigUint64(H.defaultMem, DEFAULT_MEM);
  v.setBigUint64(H.defaultCpus, DEFAULT_CPUS);
  v.setUint16(H.numSections, list.length);
  let offset = EIF_HEADER_SIZE;
  list.forEach(([, data], i) => {
    v.setBigUint64(H.sectionOffsets + i * 8, BigInt(offset));
    v.setBigUint64(H.sectionSizes + i * 8, BigInt(data.length));
    offset += SECTION_HEADER_SIZE + data.length;
  });
  const body = concatBytes(...list.map(([type, data]) => section(type, data)));
  v.setUint32(H.crc32, crc32(header.subarray(0, H.crc32), body));
  return concatBytes(header, body);
}
