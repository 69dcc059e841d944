/**
 * The kernel command line of the sealed image. It is measured (SNP hashes table, Nitro PCR0/1),
 * so the platform flag and the listen address in it are part of the image's identity: a
 * simulated-mode image can never pass for a production one.
 */
import { ImageBuildError } from "./errors.js";

export const PLATFORMS = ["sim", "sev-snp", "nitro"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Where the enclave listens in a guest with a network (sim, sev-snp). */
export const DEFAULT_LISTEN = "0.0.0.0:7000";

export interface CmdlineOptions {
  platform: Platform;
  /** HOST:PORT the enclave listens on inside the guest (a Nitro enclave: the port, on vsock). */
  listen?: string;
  /** Static IPv4 address of eth0, A.B.C.D/N. */
  ip?: string;
}

/** Console on the first serial port; a panic powers off instead of hanging. */
const BASE = ["console=ttyS0", "panic=-1", "quiet"];
const WORD = /^[A-Za-z0-9.:/_=-]+$/;

/**
 * A Nitro enclave has no network interface, only vsock: it listens on the port of `listen` on
 * vsock, any CID (the parent reaches it at the CID given to `nitro-cli run-enclave`). A vsock
 * address is kept as it is.
 */
export function nitroListen(listen = DEFAULT_LISTEN): string {
  if (listen.startsWith("vsock:")) return listen;
  const port = /:([0-9]{1,5})$/.exec(listen)?.[1];
  if (port === undefined) throw new ImageBuildError("cmdline: listen address without a port");
  return `vsock:${port}`;
}

export function kernelCmdline(o: CmdlineOptions): string {
  if (!PLATFORMS.includes(o.platform)) throw new ImageBuildError("cmdline: unknown platform");
  const words = [...BASE, `cleanroom.platform=${o.platform}`];
  const listen = o.platform === "nitro" ? nitroListen(o.listen) : o.listen;
  if (listen !== undefined) words.push(`cleanroom.listen=${listen}`);
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
