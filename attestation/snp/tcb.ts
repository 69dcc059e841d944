import type { SnpProduct } from "./product.js";

/**
 * A decoded TCB_VERSION. Turin (and later) moved the fields and added the FMC SPL, so the same
 * eight bytes mean different things per product; `fmc` is present only for Turin.
 */
export interface TcbVersion {
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
  fmc?: number;
}

export type TcbComponent = keyof TcbVersion;

function byteAt(raw: bigint, i: number): number {
  return Number((raw >> BigInt(8 * i)) & 0xffn);
}

/** `raw` is the little-endian u64 as read from the report. */
export function decodeTcb(raw: bigint, product: SnpProduct): TcbVersion {
  if (product === "Turin") {
    return {
      fmc: byteAt(raw, 0),
      bl: byteAt(raw, 1),
      tee: byteAt(raw, 2),
      snp: byteAt(raw, 3),
      ucode: byteAt(raw, 7),
    };
  }
  return { bl: byteAt(raw, 0), tee: byteAt(raw, 1), snp: byteAt(raw, 6), ucode: byteAt(raw, 7) };
}

/** Inverse of decodeTcb (reserved bytes zero); for simulated platforms and tests. */
export function encodeTcb(tcb: TcbVersion, product: SnpProduct): bigint {
  const at = (v: number, i: number): bigint => BigInt(v & 0xff) << BigInt(8 * i);
  if (product === "Turin") {
    return at(tcb.fmc ?? 0, 0) | at(tcb.bl, 1) | at(tcb.tee, 2) | at(tcb.snp, 3) | at(tcb.ucode, 7);
  }
  return at(tcb.bl, 0) | at(tcb.tee, 1) | at(tcb.snp, 6) | at(tcb.ucode, 7);
}
