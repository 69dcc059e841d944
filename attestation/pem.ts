/**
 * Certificates as bytes: one DER certificate, or PEM text holding one or more. Shared by every
 * verifier and by callers that read trusted roots from files; portable (atob, no Buffer).
 */
import { CertificateError } from "./errors.js";

function bad(message: string): never {
  throw new CertificateError(message);
}

const PEM_RE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;

/** Every certificate in `input`: one DER certificate, or one or more PEM blocks in order. */
export function certificatesFromInput(input: Uint8Array | string): Uint8Array[] {
  const text = typeof input === "string" ? input : pemText(input);
  if (text === undefined) return [input as Uint8Array];
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    let bin: string;
    try {
      bin = atob(m[1]!.replace(/\s+/g, ""));
    } catch (e) {
      throw new CertificateError("certificate: malformed PEM", { cause: e });
    }
    const der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    out.push(der);
  }
  if (out.length === 0) bad("certificate: no PEM certificate found");
  return out;
}

/** Bytes are PEM when they start with "-----BEGIN" after optional whitespace; else DER. */
function pemText(b: Uint8Array): string | undefined {
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  if (b[i] !== 0x2d) return undefined;
  return new TextDecoder().decode(b);
}

/** Exactly one certificate as DER, from DER or PEM. */
export function toDer(input: Uint8Array | string): Uint8Array {
  const all = certificatesFromInput(input);
  if (all.length !== 1) bad("certificate: expected exactly one certificate");
  return all[0]!;
}
