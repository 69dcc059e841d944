/** Loads the real SEV-SNP vectors from ../shared/vectors/sev-snp (never copied into the repo). */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseCertificate, toDer } from "../../attestation/snp/certs.js";

export const SNP_DIR = fileURLToPath(new URL("../../../shared/vectors/sev-snp/", import.meta.url));

export interface SnpVector {
  name: string;
  dir: string;
  report: Uint8Array;
  leaf: Uint8Array;
  leafKind: "VCEK" | "VLEK";
  ask: Uint8Array;
  ark: Uint8Array;
  /** VCEK/VLEK notBefore + 1 day: inside every certificate's validity. */
  at: Date;
  files: string[];
}

const read = (p: string): Uint8Array => new Uint8Array(readFileSync(p));

export function loadVector(name: string): SnpVector {
  const dir = `${SNP_DIR}${name}/`;
  const files = readdirSync(dir);
  const leafFile = files.find((f) => f === "vcek.der" || f === "vlek.der")!;
  const askFile = files.find((f) => f === "ask.pem" || f === "asvk.pem")!;
  const leaf = read(dir + leafFile);
  return {
    name,
    dir,
    report: read(`${dir}report.bin`),
    leaf,
    leafKind: leafFile.startsWith("vlek") ? "VLEK" : "VCEK",
    ask: read(dir + askFile),
    ark: read(`${dir}ark.pem`),
    at: new Date(parseCertificate(toDer(leaf)).notBefore.getTime() + 86_400_000),
    files,
  };
}

export const VECTOR_NAMES: string[] = readdirSync(SNP_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

export const readVectorFile = (name: string, file: string): Uint8Array => read(`${SNP_DIR}${name}/${file}`);

/** A value from a vector's provenance.md decoded-fields table, e.g. field "vmpl" → "1". */
export function provenanceField(name: string, field: string): string {
  const text = readFileSync(`${SNP_DIR}${name}/provenance.md`, "utf8");
  const line = text.split("\n").find((l) => l.startsWith(`| ${field} |`));
  if (!line) throw new Error(`no field ${field} in ${name}/provenance.md`);
  return line.split("|")[2]!.trim().replace(/`/g, "");
}

/**
 * What the shipped minimum TCB (AMD-SB-3019 levels) makes of each real report: null = accepted,
 * else the components named in the refusal (the reports from before the fix, and the AWS VLEK
 * report whose REPORTED_TCB microcode is 217 < 219).
 */
export const TCB_BY_DEFAULT: Record<string, string | null> = {
  "genoa-oak-v2-2024": "snp, microcode",
  "genoa-oak-v5": null,
  "milan-aws-vlek-v3": "microcode",
  "milan-azure-v3": null,
  "milan-constellation-v2-idblock": "snp, microcode",
  "milan-gosevguest-v2-debug": "snp, microcode",
  "milan-oak-v3": null,
  "milan-virtee-v2": "snp, microcode",
  "turin-oak-v5": null,
};
