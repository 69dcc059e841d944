/**
 * Initial VMSA (VM save area) of each vCPU at launch, as QEMU, EC2 or GCE set it up: the
 * x86 reset state plus the SEV features; its SHA-384 enters the launch digest.
 */
import { PAGE_SIZE } from "./ovmf.js";

export type VmmType = "QEMU" | "ec2" | "gce";

/** Where the BSP starts: the x86 reset vector. */
export const BSP_EIP = 0xffff_fff0;

interface VmmProfile {
  csAttr: (eip: number) => number;
  ssAttr: number;
  trAttr: number;
  /** RDX at reset; undefined means the vCPU signature (QEMU). */
  rdx: number | undefined;
  gPat: bigint;
  mxcsr: number;
  fcw: number;
}

const DEFAULT_G_PAT = 0x0007_0406_0007_0406n;

const PROFILES: Record<VmmType, VmmProfile> = {
  QEMU: {
    csAttr: () => 0x9b,
    ssAttr: 0x93,
    trAttr: 0x8b,
    rdx: undefined,
    gPat: DEFAULT_G_PAT,
    mxcsr: 0x1f80,
    fcw: 0x37f,
  },
  // EC2 leaves the BSP's code segment "not accessed"; values follow upstream's match with live EC2.
  ec2: {
    csAttr: (eip) => (eip === BSP_EIP ? 0x9a : 0x9b),
    ssAttr: 0x92,
    trAttr: 0x83,
    rdx: 0x600,
    gPat: DEFAULT_G_PAT,
    mxcsr: 0,
    fcw: 0,
  },
  gce: { csAttr: () => 0x9b, ssAttr: 0x93, trAttr: 0x8b, rdx: 0x600, gPat: 0x0007_0106n, mxcsr: 0, fcw: 0 },
};

const SEG = {
  es: 0x00,
  cs: 0x10,
  ss: 0x20,
  ds: 0x30,
  fs: 0x40,
  gs: 0x50,
  gdtr: 0x60,
  ldtr: 0x70,
  idtr: 0x80,
  tr: 0x90,
};
const OFF = {
  efer: 0xd0,
  cr4: 0x148,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
  gPat: 0x268,
  rdx: 0x310,
  sevFeatures: 0x3b0,
  xcr0: 0x3e8,
  mxcsr: 0x408,
  x87Fcw: 0x410,
};

export interface VmsaParams {
  eip: number;
  vmmType: VmmType;
  vcpuSig: number;
  guestFeatures: bigint;
}

export function buildVmsaPage(p: VmsaParams): Uint8Array {
  const prof = PROFILES[p.vmmType];
  const page = new Uint8Array(PAGE_SIZE);
  const v = new DataView(page.buffer);
  const seg = (off: number, selector: number, attrib: number, limit: number, base: number): void => {
    v.setUint16(off, selector, true);
    v.setUint16(off + 2, attrib, true);
    v.setUint32(off + 4, limit, true);
    v.setBigUint64(off + 8, BigInt(base), true);
  };
  for (const off of [SEG.es, SEG.ds, SEG.fs, SEG.gs]) seg(off, 0, 0x93, 0xffff, 0);
  // Real-mode start: CS base carries the high bits of the EIP, RIP the low 16.
  seg(SEG.cs, 0xf000, prof.csAttr(p.eip), 0xffff, (p.eip & 0xffff_0000) >>> 0);
  seg(SEG.ss, 0, prof.ssAttr, 0xffff, 0);
  seg(SEG.gdtr, 0, 0, 0xffff, 0);
  seg(SEG.ldtr, 0, 0x82, 0xffff, 0);
  seg(SEG.idtr, 0, 0, 0xffff, 0);
  seg(SEG.tr, 0, prof.trAttr, 0xffff, 0);
  v.setBigUint64(OFF.efer, 0x1000n, true); // SVME
  v.setBigUint64(OFF.cr4, 0x40n, true); // MCE
  v.setBigUint64(OFF.cr0, 0x10n, true);
  v.setBigUint64(OFF.dr7, 0x400n, true);
  v.setBigUint64(OFF.dr6, 0xffff_0ff0n, true);
  v.setBigUint64(OFF.rflags, 0x2n, true);
  v.setBigUint64(OFF.rip, BigInt(p.eip & 0xffff), true);
  v.setBigUint64(OFF.gPat, prof.gPat, true);
  v.setBigUint64(OFF.rdx, BigInt(prof.rdx ?? p.vcpuSig), true);
  v.setBigUint64(OFF.sevFeatures, p.guestFeatures, true);
  v.setBigUint64(OFF.xcr0, 0x1n, true);
  v.setUint32(OFF.mxcsr, prof.mxcsr, true);
  v.setUint16(OFF.x87Fcw, prof.fcw, true);
  return page;
}
