/**
 * SNP launch digest as the AMD firmware extends it on every LAUNCH_UPDATE page:
 * LD = SHA-384(PAGE_INFO) with PAGE_INFO = LD ‖ contents digest ‖ length, type, perms, GPA.
 */
import { sha384 } from "../bytes.js";
import { MeasurementError } from "./errors.js";
import { PAGE_SIZE } from "./ovmf.js";

export const LD_SIZE = 48;
const PAGE_INFO_SIZE = 0x70;

export const PageType = {
  Normal: 0x01,
  Vmsa: 0x02,
  Zero: 0x03,
  Unmeasured: 0x04,
  Secrets: 0x05,
  Cpuid: 0x06,
} as const;
export type PageType = (typeof PageType)[keyof typeof PageType];

/** VMSA pages are recorded at GPA (u64)-1, page-aligned and cut to 48 bits. */
const VMSA_GPA = 0xffff_ffff_f000;
const ZEROS = new Uint8Array(LD_SIZE);

export function pageInfo(ld: Uint8Array, contents: Uint8Array, type: PageType, gpa: number): Uint8Array {
  const info = new Uint8Array(PAGE_INFO_SIZE);
  info.set(ld, 0);
  info.set(contents, 0x30);
  const view = new DataView(info.buffer);
  view.setUint16(0x60, PAGE_INFO_SIZE, true);
  info[0x62] = type;
  // 0x63 IMI_PAGE, 0x64..0x66 VMPL3..1 permissions and 0x67 stay zero for a launch.
  view.setBigUint64(0x68, BigInt(gpa), true);
  return info;
}

function checkRange(gpa: number, length: number): void {
  if (gpa % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) {
    throw new MeasurementError("measure: page range not 4096-aligned");
  }
}

export class LaunchDigest {
  #ld: Uint8Array;

  constructor(seed: Uint8Array = ZEROS) {
    if (seed.length !== LD_SIZE) throw new MeasurementError("measure: seed digest must be 48 bytes");
    this.#ld = seed.slice();
  }

  get digest(): Uint8Array {
    return this.#ld.slice();
  }

  async #update(type: PageType, gpa: number, contents: Uint8Array): Promise<void> {
    this.#ld = await sha384(pageInfo(this.#ld, contents, type, gpa));
  }

  async updateNormalPages(gpa: number, data: Uint8Array): Promise<void> {
    checkRange(gpa, data.length);
    // Page digests do not depend on the chain, so they are computed concurrently.
    const pages: Promise<Uint8Array>[] = [];
    for (let off = 0; off < data.length; off += PAGE_SIZE)
      pages.push(sha384(data.subarray(off, off + PAGE_SIZE)));
    const digests = await Promise.all(pages);
    for (let i = 0; i < digests.length; i++)
      await this.#update(PageType.Normal, gpa + i * PAGE_SIZE, digests[i]!);
  }

  async updateVmsaPage(page: Uint8Array): Promise<void> {
    if (page.length !== PAGE_SIZE) throw new MeasurementError("measure: VMSA page must be 4096 bytes");
    await this.#update(PageType.Vmsa, VMSA_GPA, await sha384(page));
  }

  /** Pages whose contents the firmware does not measure (zero, unmeasured, secrets, CPUID). */
  async updateUnmeasuredPages(type: Exclude<PageType, 1 | 2>, gpa: number, length: number): Promise<void> {
    checkRange(gpa, length);
    for (let off = 0; off < length; off += PAGE_SIZE) await this.#update(type, gpa + off, ZEROS);
  }
}
