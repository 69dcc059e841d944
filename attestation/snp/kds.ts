/**
 * AMD Key Distribution Service: URL building and answer parsing. Fetching is off unless the
 * caller passes a fetch function (verification needs no network by default).
 */
import { toHex } from "../bytes.js";
import { CleanroomError, UsageError } from "../errors.js";
import { certificatesFromInput, type EndorsementKind, parseCertificate } from "./certs.js";
import { parseCrl } from "./crl.js";
import type { SnpProduct } from "./product.js";
import type { TcbVersion } from "./tcb.js";

/** KDS answered with an error status or something that is not the expected certificate(s). */
export class KdsError extends CleanroomError {
  static override code = "ERR_KDS";
}

export const KDS_BASE = "https://kdsintf.amd.com";

export type FetchLike = (url: string) => Promise<{ ok: boolean; arrayBuffer(): Promise<ArrayBuffer> }>;

const keyPath = (kind: EndorsementKind): string => (kind === "VCEK" ? "vcek" : "vlek");

/** ASK+ARK (or ASVK+ARK) bundle, PEM, intermediate first. */
export function certChainUrl(product: SnpProduct, kind: EndorsementKind = "VCEK", base = KDS_BASE): string {
  return `${base}/${keyPath(kind)}/v1/${product}/cert_chain`;
}

export function crlUrl(product: SnpProduct, kind: EndorsementKind = "VCEK", base = KDS_BASE): string {
  return `${base}/${keyPath(kind)}/v1/${product}/crl`;
}

/**
 * The VCEK for a chip at a TCB. Turin ids are 8 bytes (16 hex characters) and Turin adds fmcSPL;
 * `chipId` may be the report's 64-byte field.
 */
export function vcekUrl(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion, base = KDS_BASE): string {
  const idLength = product === "Turin" ? 8 : 64;
  if (chipId.length !== 64 && chipId.length !== idLength) throw new UsageError("vcekUrl: chip id length");
  const q = new URLSearchParams();
  if (product === "Turin") {
    if (tcb.fmc === undefined) throw new UsageError("vcekUrl: Turin needs the FMC SPL");
    q.set("fmcSPL", String(tcb.fmc));
  }
  q.set("blSPL", String(tcb.bl));
  q.set("teeSPL", String(tcb.tee));
  q.set("snpSPL", String(tcb.snp));
  q.set("ucodeSPL", String(tcb.ucode));
  return `${base}/vcek/v1/${product}/${toHex(chipId.subarray(0, idLength))}?${q}`;
}

/** The answer of a VCEK URL: one DER certificate. */
export function parseVcekResponse(body: Uint8Array): Uint8Array {
  try {
    parseCertificate(body);
  } catch (e) {
    throw new KdsError("kds: answer is not a DER certificate", { cause: e });
  }
  return body;
}

/** The answer of a cert_chain URL: PEM, intermediate (ASK/ASVK) first, then the ARK. */
export function parseCertChainResponse(body: Uint8Array | string): { ask: Uint8Array; ark: Uint8Array } {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  let certs: Uint8Array[];
  try {
    if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new KdsError("kds: answer is not PEM");
    certs = certificatesFromInput(text);
    for (const c of certs) parseCertificate(c);
  } catch (e) {
    throw new KdsError("kds: answer is not a PEM certificate chain", { cause: e });
  }
  if (certs.length !== 2) throw new KdsError("kds: certificate chain does not hold two certificates");
  return { ask: certs[0]!, ark: certs[1]! };
}

/** The answer of a CRL URL: one DER CRL (its signature is checked against the chain later). */
export function parseCrlResponse(body: Uint8Array): Uint8Array {
  try {
    parseCrl(body);
  } catch (e) {
    throw new KdsError("kds: answer is not a DER CRL", { cause: e });
  }
  return body;
}

async function get(fetchFn: FetchLike | undefined, url: string): Promise<Uint8Array> {
  if (!fetchFn) throw new UsageError("kds: fetching is off; pass a fetch function to enable it");
  const res = await fetchFn(url);
  if (!res.ok) throw new KdsError("kds: request failed");
  return new Uint8Array(await res.arrayBuffer());
}

export async function fetchVcek(
  product: SnpProduct,
  chipId: Uint8Array,
  tcb: TcbVersion,
  fetchFn?: FetchLike,
): Promise<Uint8Array> {
  return parseVcekResponse(await get(fetchFn, vcekUrl(product, chipId, tcb)));
}

export async function fetchCertChain(
  product: SnpProduct,
  kind: EndorsementKind,
  fetchFn?: FetchLike,
): Promise<{ ask: Uint8Array; ark: Uint8Array }> {
  return parseCertChainResponse(await get(fetchFn, certChainUrl(product, kind)));
}

/** The product's CRL for VCEK (ASK revocations) or VLEK (ASVK revocations) chains. */
export async function fetchCrl(
  product: SnpProduct,
  kind: EndorsementKind,
  fetchFn?: FetchLike,
): Promise<Uint8Array> {
  return parseCrlResponse(await get(fetchFn, crlUrl(product, kind)));
}
