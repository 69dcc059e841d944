/**
 * The expected image from a published file instead of hex on the command line: a release
 * manifest (`manifest.json`, schema cleanroom-image-manifest/1, docs/IMAGE.md) gives the SEV-SNP
 * launch measurement and the Nitro PCR0-2; a simulated platform's `expected.json` (cleanroom sim
 * init, npm start) gives the simulated measurement and PCRs. Values a partner recomputed with
 * `cleanroom measure` can be compared with the same file.
 */
import { readFile } from "node:fs/promises";
import { UsageError } from "../../attestation/errors.js";

export interface ExpectedImage {
  /** SEV-SNP launch measurements (96 hex). */
  measurements: string[];
  /** Nitro PCRs (index → 96 hex), when the file has them. */
  pcrs?: Record<number, string>;
}

const HEX96 = /^[0-9a-f]{96}$/;
const MANIFEST_SCHEMA = "cleanroom-image-manifest/1";

function pcrsOf(v: unknown, keyOf: (i: number) => string): Record<number, string> | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const out: Record<number, string> = {};
  for (const i of [0, 1, 2]) {
    const value = (v as Record<string, unknown>)[keyOf(i)];
    if (typeof value !== "string" || !HEX96.test(value)) return undefined;
    out[i] = value;
  }
  return out;
}

export function expectedImageOf(doc: unknown, path: string): ExpectedImage {
  const d = doc as Record<string, unknown> | null;
  if (typeof d !== "object" || d === null) throw new UsageError(`--manifest ${path}: not a JSON object`);
  if (d.schema === MANIFEST_SCHEMA) {
    const images = (d.images ?? {}) as Record<string, { sevSnp?: { measurement?: unknown }; pcrs?: unknown }>;
    const snp = images["sev-snp"]?.sevSnp?.measurement;
    const measurements = typeof snp === "string" && HEX96.test(snp) ? [snp] : [];
    const pcrs = pcrsOf(images.nitro?.pcrs, (i) => `PCR${i}`);
    if (!measurements.length && !pcrs) {
      throw new UsageError(
        `--manifest ${path}: the release manifest names no SEV-SNP measurement and no Nitro PCRs (built without --ovmf or --eif?)`,
      );
    }
    return { measurements, ...(pcrs ? { pcrs } : {}) };
  }
  // A simulated platform's expected.json: {measurement, pcrs: {0, 1, 2}}.
  if (typeof d.measurement === "string" && HEX96.test(d.measurement)) {
    const pcrs = pcrsOf(d.pcrs, String);
    return { measurements: [d.measurement], ...(pcrs ? { pcrs } : {}) };
  }
  throw new UsageError(
    `--manifest ${path}: neither a release manifest (${MANIFEST_SCHEMA}) nor a simulated platform's expected.json`,
  );
}

export async function readExpectedImage(path: string): Promise<ExpectedImage> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    if (e instanceof SyntaxError) throw new UsageError(`--manifest ${path}: not JSON`);
    throw e;
  }
  return expectedImageOf(doc, path);
}
