/**
 * The kernel/initrd/cmdline hashes table QEMU writes into the firmware's hashes page for
 * measured direct boot (QEMU target/i386/sev.c layout); it must match QEMU byte for byte.
 */
import { concatBytes, sha256 } from "../bytes.js";
import { MeasurementError } from "./errors.js";
import { guidToBytes } from "./guid.js";
import { PAGE_SIZE } from "./ovmf.js";

const TABLE_HEADER_GUID = guidToBytes("9438d606-4f22-4cc9-b479-a793d411fd21");
const CMDLINE_GUID = guidToBytes("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");
const INITRD_GUID = guidToBytes("44baf731-3a2f-4bd7-9af1-41e29169781d");
const KERNEL_GUID = guidToBytes("4de79437-abd2-427f-b835-d5b172d2045b");

const ENTRY_SIZE = 16 + 2 + 32;
const TABLE_SIZE = 16 + 2 + 3 * ENTRY_SIZE;
/** QEMU pads the table to a multiple of 16 bytes. */
export const PADDED_TABLE_SIZE = Math.ceil(TABLE_SIZE / 16) * 16;

export interface DirectBootInputs {
  kernel: Uint8Array;
  initrd?: Uint8Array | undefined;
  /** The command line: well-formed Unicode, or valid UTF-8 bytes (see commandLineBytes). */
  append?: string | Uint8Array | undefined;
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The command line's UTF-8 bytes, strictly: sev-snp-measure hashes `append.encode()`, which
 * fails for text that is not valid Unicode (Python keeps undecodable argv bytes as lone
 * surrogates), so a string with a lone surrogate or bytes that are not UTF-8 are refused rather
 * than measured with U+FFFD in their place.
 */
export function commandLineBytes(append: string | Uint8Array): Uint8Array {
  if (typeof append === "string") {
    if (LONE_SURROGATE.test(append)) throw new MeasurementError("measure: command line is not valid Unicode");
    return new TextEncoder().encode(append);
  }
  try {
    new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(append);
  } catch {
    throw new MeasurementError("measure: command line is not valid UTF-8");
  }
  return append;
}

function le16(n: number): Uint8Array {
  return new Uint8Array([n & 0xff, n >> 8]);
}

function entry(guid: Uint8Array, digest: Uint8Array): Uint8Array {
  return concatBytes(guid, le16(ENTRY_SIZE), digest);
}

export async function buildSevHashesTable(inputs: DirectBootInputs): Promise<Uint8Array> {
  // The kernel sees its command line NUL-terminated, and QEMU hashes it that way; no
  // command line at all is the same as an empty one.
  const cmdline = concatBytes(commandLineBytes(inputs.append ?? ""), new Uint8Array(1));
  const table = concatBytes(
    TABLE_HEADER_GUID,
    le16(TABLE_SIZE),
    entry(CMDLINE_GUID, await sha256(cmdline)),
    entry(INITRD_GUID, await sha256(inputs.initrd ?? new Uint8Array(0))),
    entry(KERNEL_GUID, await sha256(inputs.kernel)),
  );
  const padded = new Uint8Array(PADDED_TABLE_SIZE);
  padded.set(table);
  return padded;
}

/** The 4 KiB page measured at the hashes section, with the table at its in-page offset. */
export function buildSevHashesPage(table: Uint8Array, offsetInPage: number): Uint8Array {
  if (offsetInPage < 0 || offsetInPage + table.length > PAGE_SIZE) {
    throw new MeasurementError("measure: hashes table does not fit in its page");
  }
  const page = new Uint8Array(PAGE_SIZE);
  page.set(table, offsetInPage);
  return page;
}
