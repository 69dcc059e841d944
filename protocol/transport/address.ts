/**
 * Socket addresses of the host ↔ enclave transport (PROTOCOL.md §7): the textual forms operators
 * type, and the Linux `struct sockaddr_vm` / `struct sockaddr_un` bytes the kernel takes. Pure and
 * portable; socket-node.ts does the system calls. Byte order is little-endian, the native order of
 * every Linux target the image and host run on (x86_64, arm64).
 */
import { TransportError } from "./errors.js";

/** Where to connect or listen. `unix` exists so the very same fd code runs where vsock has no loopback. */
export type SocketTarget = { family: "vsock"; cid: number; port: number } | { family: "unix"; path: string };

export const AF_UNIX = 1;
export const AF_VSOCK = 40;
/** Listen on every CID of this machine (linux/vm_sockets.h). */
export const VMADDR_CID_ANY = 0xffffffff;
/** Let the kernel choose the port (read it back with getsockname). */
export const VMADDR_PORT_ANY = 0xffffffff;

export const SOCKADDR_VM_BYTES = 16;
const SUN_PATH_BYTES = 108;
export const SOCKADDR_UN_BYTES = 2 + SUN_PATH_BYTES;

const U32 = /^(?:0|[1-9][0-9]{0,9})$/;

function u32(text: string, what: string): number {
  const n = Number(text);
  if (!U32.test(text) || n > 0xffffffff) throw new TransportError("address", `vsock: ${what} is not a u32`);
  return n;
}

/** `vsock:CID:PORT`: where the host connects (the enclave's CID from `nitro-cli run-enclave --enclave-cid`). */
export function parseVsockConnect(text: string): SocketTarget {
  const m = /^vsock:([^:]*):([^:]*)$/.exec(text);
  if (!m) throw new TransportError("address", "vsock: expected vsock:CID:PORT");
  return { family: "vsock", cid: u32(m[1]!, "CID"), port: u32(m[2]!, "port") };
}

/** `vsock:PORT` (any CID of this machine) or `vsock:CID:PORT`: where the enclave listens. */
export function parseVsockListen(text: string): SocketTarget {
  const m = /^vsock:([^:]*)$/.exec(text);
  if (!m) return parseVsockConnect(text);
  return { family: "vsock", cid: VMADDR_CID_ANY, port: u32(m[1]!, "port") };
}

/** The textual form of a target; a listener on any CID prints as `vsock:PORT`. */
export function formatTarget(t: SocketTarget): string {
  if (t.family === "unix") return `unix:${t.path}`;
  return t.cid === VMADDR_CID_ANY ? `vsock:${t.port}` : `vsock:${t.cid}:${t.port}`;
}

function checkU32(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new TransportError("address", "vsock: not a u32");
}

/** The bytes of `struct sockaddr_vm` or `struct sockaddr_un` (pathname sockets only, NUL-terminated). */
export function encodeSockaddr(t: SocketTarget): Uint8Array {
  if (t.family === "vsock") {
    checkU32(t.cid);
    checkU32(t.port);
    const out = new Uint8Array(SOCKADDR_VM_BYTES);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, AF_VSOCK, true);
    // Bytes 2..3 svm_reserved1, 12..15 svm_zero (svm_flags on newer kernels): zero.
    dv.setUint32(4, t.port, true);
    dv.setUint32(8, t.cid, true);
    return out;
  }
  const path = new TextEncoder().encode(t.path);
  if (path.length === 0 || path.length >= SUN_PATH_BYTES || path.includes(0)) {
    throw new TransportError("address", "unix: path empty, too long or with a NUL byte");
  }
  const out = new Uint8Array(SOCKADDR_UN_BYTES);
  new DataView(out.buffer).setUint16(0, AF_UNIX, true);
  out.set(path, 2);
  return out;
}

/** A sockaddr as the kernel returned it (getsockname), `bytes` cut to the length it reported. */
export function decodeSockaddr(bytes: Uint8Array): SocketTarget {
  if (bytes.length < 2) throw new TransportError("address", "sockaddr: too short");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = dv.getUint16(0, true);
  if (family === AF_VSOCK) {
    if (bytes.length !== SOCKADDR_VM_BYTES) throw new TransportError("address", "sockaddr_vm: wrong length");
    return { family: "vsock", port: dv.getUint32(4, true), cid: dv.getUint32(8, true) };
  }
  if (family === AF_UNIX) {
    if (bytes.length > SOCKADDR_UN_BYTES) throw new TransportError("address", "sockaddr_un: too long");
    const raw = bytes.subarray(2);
    const end = raw.indexOf(0);
    const path = raw.subarray(0, end < 0 ? raw.length : end);
    if (path.length === 0) throw new TransportError("address", "sockaddr_un: unnamed or abstract socket");
    try {
      return { family: "unix", path: new TextDecoder("utf-8", { fatal: true }).decode(path) };
    } catch (e) {
      throw new TransportError("address", "sockaddr_un: path is not UTF-8", { cause: e });
    }
  }
  throw new TransportError("address", "sockaddr: unknown family");
}
