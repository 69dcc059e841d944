/**
 * The /dev/nsm ioctl (drivers/misc/nsm.c, include/uapi/linux/nsm.h):
 *   struct nsm_iovec { __u64 addr; __u64 len; };
 *   struct nsm_raw { struct nsm_iovec request; struct nsm_iovec response; };
 *   NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw)
 * `response.len` is in/out: our capacity going in, the answer's length coming back. Node has no
 * ioctl, so the call goes through koffi (an FFI whose prebuilt binaries ship inside its npm
 * packages), imported only when a Nitro transport is made.
 */

import { open } from "node:fs/promises";
import { constants } from "node:os";
import { NSM_REQUEST_MAX_SIZE, NSM_RESPONSE_MAX_SIZE } from "./nsm-cbor.js";
import { errnoName, PlatformError } from "./platform-error.js";

/** Sends one CBOR request to the NSM and resolves with its CBOR answer. */
export type NsmTransport = (requestCbor: Uint8Array) => Promise<Uint8Array>;

export const NSM_MAGIC = 0x0a;
export const NSM_RAW_SIZE = 32;

/** Linux's generic _IOWR (x86_64 and arm64 alike): dir(2) << 30 | size << 16 | type << 8 | nr. */
export function iowr(type: number, nr: number, size: number): number {
  const IOC_READ_WRITE = 3;
  return ((IOC_READ_WRITE << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

export const NSM_IOCTL_RAW = iowr(NSM_MAGIC, 0, NSM_RAW_SIZE);

export interface NsmRaw {
  requestAddr: bigint;
  requestLen: number;
  responseAddr: bigint;
  responseLen: number;
}

/** struct nsm_raw in the native (little-endian on every Nitro host) byte order. */
export function packNsmRaw(m: NsmRaw): Uint8Array {
  const out = new Uint8Array(NSM_RAW_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, m.requestAddr, true);
  dv.setBigUint64(8, BigInt(m.requestLen), true);
  dv.setBigUint64(16, m.responseAddr, true);
  dv.setBigUint64(24, BigInt(m.responseLen), true);
  return out;
}

export function unpackNsmRaw(b: Uint8Array): NsmRaw {
  if (b.length !== NSM_RAW_SIZE) throw new PlatformError("bad-output", "nsm: message is not 32 bytes");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = (at: number): number => {
    const v = dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new PlatformError("bad-output", "nsm: length out of range");
    return Number(v);
  };
  return {
    requestAddr: dv.getBigUint64(0, true),
    requestLen: len(8),
    responseAddr: dv.getBigUint64(16, true),
    responseLen: len(24),
  };
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

function openFailure(e: unknown): PlatformError {
  const errno = errnoName(e);
  const options = errno ? { cause: e, detail: errno } : { cause: e };
  if (errno === "ENOENT" || errno === "ENXIO" || errno === "ENODEV") {
    return new PlatformError("unavailable", "nsm: device not found", options);
  }
  if (errno === "EACCES" || errno === "EPERM")
    return new PlatformError("unavailable", "nsm: permission denied", options);
  return new PlatformError("unavailable", "nsm: device cannot be opened", options);
}

type Koffi = typeof import("koffi");

async function loadKoffi(): Promise<Koffi> {
  try {
    return await import("koffi");
  } catch (e) {
    throw new PlatformError("unavailable", "nsm: the koffi FFI module cannot be loaded", { cause: e });
  }
}

/**
 * The real transport: one ioctl per request on `device`. The call is synchronous (koffi offers
 * no asynchronous form of a variadic function such as ioctl); the NSM answers in milliseconds.
 */
export async function createIoctlTransport(device: string): Promise<NsmTransport> {
  const koffi = await loadKoffi();
  // The process's own symbols: ioctl comes from whatever libc node runs on (glibc or musl).
  const ioctl = koffi.load(null).func("int ioctl(int fd, unsigned long request, ...)");
  // Fail at start-up, not at the first request, when the device is absent or closed to us.
  await (await open(device, "r+").catch((e: unknown) => Promise.reject(openFailure(e)))).close();

  return async (request) => {
    if (request.length > NSM_REQUEST_MAX_SIZE) {
      throw new PlatformError("refused", "nsm: request larger than the driver accepts");
    }
    const handle = await open(device, "r+").catch((e: unknown) => Promise.reject(openFailure(e)));
    const req = koffi.alloc("uint8_t", Math.max(request.length, 1));
    const res = koffi.alloc("uint8_t", NSM_RESPONSE_MAX_SIZE);
    const msg = koffi.alloc("uint8_t", NSM_RAW_SIZE);
    try {
      new Uint8Array(koffi.view(req, request.length)).set(request);
      const raw = new Uint8Array(koffi.view(msg, NSM_RAW_SIZE));
      raw.set(
        packNsmRaw({
          requestAddr: koffi.address(req),
          requestLen: request.length,
          responseAddr: koffi.address(res),
          responseLen: NSM_RESPONSE_MAX_SIZE,
        }),
      );
      if (ioctl(handle.fd, NSM_IOCTL_RAW, "void *", msg) !== 0) {
        const errno = ERRNO_NAMES.get(koffi.errno()) ?? "EUNKNOWN";
        throw new PlatformError("refused", "nsm: the driver refused the request", { detail: errno });
      }
      const { responseLen } = unpackNsmRaw(raw.slice());
      if (responseLen === 0 || responseLen > NSM_RESPONSE_MAX_SIZE) {
        throw new PlatformError("bad-output", "nsm: response length out of range");
      }
      return new Uint8Array(koffi.view(res, responseLen)).slice();
    } finally {
      koffi.free(msg);
      koffi.free(res);
      koffi.free(req);
      await handle.close();
    }
  };
}
