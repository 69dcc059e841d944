import { isIP } from "node:net";

/** True for addresses that never leave the machine: 127.0.0.0/8, ::1 and their mapped forms. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, "").toLowerCase();
  if (a === "localhost") return true;
  const v4 = a.startsWith("::ffff:") ? a.slice(7) : a;
  if (isIP(v4) === 4) return v4.startsWith("127.");
  return isIP(a) === 6 && (a === "::1" || a === "0:0:0:0:0:0:0:1");
}
