/**
 * The kernel command line of the sealed image. It is measured (SNP hashes table, Nitro PCR0/1),
 * so the platform flag and the listen address in it are part of the image's identity: a
 * simulated-mode image can never pass for a production one.
 */
import { ImageBuildError } from "./errors.js";

export const PLATFORMS = ["sim", "sev-snp", "nitro"] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface CmdlineOptions {
  platform: Platform;
  /** HOST:PORT the enclave listens on inside the guest. */
  listen?: string;
  /** Static IPv4 address of eth0, A.B.C.D/N. */
  ip?: string;
}

/** Console on the first serial port; a panic powers off instead of hanging. */
const BASE = ["console=ttyS0", "panic=-1", "quiet"];
const WORD = /^[A-Za-z0-9.:/_=-]+$/;

export function kernelCmdline(o: CmdlineOptions): string {
  if (!PLATFORMS.includes(o.platform)) throw new ImageBuildError("cmdline: unknown platform");
  const words = [...BASE, `cleanroom.platform=${o.platform}`];
  if (o.listen !== undefined) words.push(`cleanroom.listen=${o.listen}`);
  if (o.ip !== undefined) words.push(`cleanroom.ip=${o.ip}`);
  if (!words.every((w) => WORD.test(w)))
    throw new ImageBuildError("cmdline: value with unexpected characters");
  return words.join(" ");
}

/** The `cleanroom.*` parameters of a command line (what the guest init reads from /proc/cmdline). */
export function cleanroomArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of text.trim().split(/\s+/)) {
    const eq = word.indexOf("=");
    if (word.startsWith("cleanroom.") && eq > 0) out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}
