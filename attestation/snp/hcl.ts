/** Azure confidential VMs wrap the SNP report in an "HCL report" (magic "HCLA"). Bytes only. */
import { EvidenceFormatError } from "../errors.js";
import { REPORT_SIZE } from "./report.js";

const MAGIC = [0x48, 0x43, 0x4c, 0x41];
const REPORT_AT = 0x20;
const RUNTIME_LENGTH_AT = 0x4d0;
const RUNTIME_AT = 0x4d4;

/**
 * The SNP report (0x20..0x4BF) and the runtime-claims bytes whose SHA-256 Azure puts in
 * REPORT_DATA[0:32]; the caller checks that binding.
 */
export function unwrapAzureHclReport(hcl: Uint8Array): { report: Uint8Array; runtimeData: Uint8Array } {
  if (hcl.length < RUNTIME_AT || MAGIC.some((m, i) => hcl[i] !== m)) {
    throw new EvidenceFormatError("hcl report: bad magic or size");
  }
  const n = new DataView(hcl.buffer, hcl.byteOffset, hcl.byteLength).getUint32(RUNTIME_LENGTH_AT, true);
  if (RUNTIME_AT + n > hcl.length) throw new EvidenceFormatError("hcl report: runtime data out of bounds");
  return {
    report: hcl.slice(REPORT_AT, REPORT_AT + REPORT_SIZE),
    runtimeData: hcl.slice(RUNTIME_AT, RUNTIME_AT + n),
  };
}
