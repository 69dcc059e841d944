/**
 * Finding the VCEK for a report when it did not travel with the evidence: first a local cache
 * (keyed like the KDS URL: product, chip id, TCB), then, only when the caller passes a fetch
 * function, AMD's KDS; a fetched certificate is cached. No network unless asked for. Whoever
 * fetches from KDS fetches the product's CRL too (fetchCrlForReport); CRLs are never cached.
 */
import { UsageError } from "../errors.js";
import { type FetchLike, fetchCrl, fetchVcek, vcekUrl } from "./kds.js";
import type { SnpProduct } from "./product.js";
import { parseReport } from "./report.js";
import { decodeTcb } from "./tcb.js";

export interface VcekCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, der: Uint8Array): Promise<void>;
}

export interface VcekLookup {
  cache?: VcekCache;
  /** Off by default: without it a cache miss is an error. */
  fetch?: FetchLike;
  /** Needed for version 2 reports, which carry no CPUID. */
  product?: SnpProduct;
}

/** The cache key: the KDS URL path and query, which name exactly one certificate. */
export function vcekCacheKey(product: SnpProduct, chipId: Uint8Array, reportedTcb: bigint): string {
  return vcekUrl(product, chipId, decodeTcb(reportedTcb, product), "");
}

export async function findVcek(reportBytes: Uint8Array, o: VcekLookup): Promise<Uint8Array> {
  const report = parseReport(reportBytes);
  const product = o.product ?? report.product;
  if (!product) throw new UsageError("vcek: a version 2 report needs the product named");
  if (report.signerInfo.signingKey !== "VCEK") {
    throw new UsageError("vcek: only VCEKs can be looked up; a VLEK comes with the evidence");
  }
  const key = vcekCacheKey(product, report.chipId, report.reportedTcb);
  const cached = await o.cache?.get(key);
  if (cached) return cached;
  const der = await fetchVcek(product, report.chipId, decodeTcb(report.reportedTcb, product), o.fetch);
  await o.cache?.put(key, der);
  return der;
}

/**
 * AMD's current CRL for the report's chain (VCEK or VLEK), from KDS through `o.fetch`; needs the
 * fetch function (no network otherwise) and, for a version 2 report, the product.
 */
export async function fetchCrlForReport(reportBytes: Uint8Array, o: VcekLookup): Promise<Uint8Array> {
  const report = parseReport(reportBytes);
  const product = o.product ?? report.product;
  if (!product) throw new UsageError("crl: a version 2 report needs the product named");
  const kind = report.signerInfo.signingKey;
  if (kind !== "VCEK" && kind !== "VLEK") throw new UsageError("crl: the report names no endorsement key");
  if (!o.fetch) throw new UsageError("crl: fetching is off; pass a fetch function to enable it");
  return fetchCrl(product, kind, o.fetch);
}
