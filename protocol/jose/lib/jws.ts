/** ES256 compact JWS helpers shared by approvals, requests, responses and audit entries. */
import { base64urlnopad } from "@scure/base";
import { CompactSign, compactVerify, decodeProtectedHeader } from "jose";
import { isPlainObject } from "./shape.js";

export const ALG = "ES256";

export interface Header {
  alg: typeof ALG;
  typ: string;
  kid?: string;
}

/**
 * Import a public P-256 verification key from only its public members, so stray JWK members
 * (key_ops, ext, a private "d") can neither widen nor break its use.
 */
export function importVerifyKey(jwk: JsonWebKey): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "jwk",
    { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
}

export function signCompact(payload: Uint8Array, header: Header, privateKey: CryptoKey): Promise<string> {
  return new CompactSign(payload).setProtectedHeader({ ...header }).sign(privateKey);
}

/**
 * Whether `compact` has exactly `parts` dot-separated parts, each the one canonical spelling of its
 * bytes in unpadded base64url. jose also decodes padded, whitespace-broken and non-zero-trailing-bit
 * spellings, so without this one signature (or JWE tag) would have many accepted texts.
 */
export function isCanonicalCompact(compact: string, parts: 3 | 5): boolean {
  const p = compact.split(".");
  if (p.length !== parts) return false;
  for (const s of p) {
    try {
      base64urlnopad.decode(s);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * The protected header when it has exactly alg ES256, the given typ and (when `withKid`) a
 * string kid; undefined for anything else, including input that is not a canonical compact JWS.
 */
export function readHeader(jws: unknown, typ: string | RegExp, withKid: boolean): Header | undefined {
  if (typeof jws !== "string" || !isCanonicalCompact(jws, 3)) return undefined;
  let h: unknown;
  try {
    h = decodeProtectedHeader(jws);
  } catch {
    return undefined;
  }
  if (!isPlainObject(h)) return undefined;
  const keys = Object.keys(h).sort().join(",");
  if (keys !== (withKid ? "alg,kid,typ" : "alg,typ")) return undefined;
  if (h.alg !== ALG || typeof h.typ !== "string") return undefined;
  if (typeof typ === "string" ? h.typ !== typ : !typ.test(h.typ)) return undefined;
  if (withKid && typeof h.kid !== "string") return undefined;
  return h as unknown as Header;
}

/**
 * The verified payload bytes, or undefined when the signature does not verify with `key` or any
 * part is not canonical base64url.
 */
export async function verifyCompact(jws: string, key: CryptoKey): Promise<Uint8Array | undefined> {
  if (!isCanonicalCompact(jws, 3)) return undefined;
  try {
    const { payload } = await compactVerify(jws, key, { algorithms: [ALG] });
    return payload;
  } catch {
    return undefined;
  }
}
