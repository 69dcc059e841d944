/** Byte helpers on Uint8Array only, so attestation/ runs unchanged in a browser bundle. */
import { base64 } from "@scure/base";
import { nodeCrypto } from "./native.js";

export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(h: string): Uint8Array {
  const clean = h.startsWith("0x") ? h.slice(2) : h;
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new TypeError("invalid hex string");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time for equal lengths; lengths themselves are not secret here. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function isAllZero(b: Uint8Array): boolean {
  let d = 0;
  for (const x of b) d |= x;
  return d === 0;
}

/**
 * A digest of `data`: node:crypto where the runtime has it (synchronous; WebCrypto's digest hops
 * through a thread pool, which dominates for the short inputs hashed here), WebCrypto elsewhere.
 */
async function digest(
  node: "sha256" | "sha384" | "sha512",
  web: "SHA-256" | "SHA-384" | "SHA-512",
  data: Uint8Array,
): Promise<Uint8Array> {
  if (nodeCrypto) return Uint8Array.from(nodeCrypto.createHash(node).update(data).digest());
  return new Uint8Array(await crypto.subtle.digest(web, data as BufferSource));
}

export const sha256 = (data: Uint8Array): Promise<Uint8Array> => digest("sha256", "SHA-256", data);
export const sha384 = (data: Uint8Array): Promise<Uint8Array> => digest("sha384", "SHA-384", data);
export const sha512 = (data: Uint8Array): Promise<Uint8Array> => digest("sha512", "SHA-512", data);

export function toBase64(b: Uint8Array): string {
  return base64.encode(b);
}

/** Strict (canonical, padded) base64; anything else is a TypeError for the caller to wrap. */
export function fromBase64(s: string): Uint8Array {
  return base64.decode(s);
}
