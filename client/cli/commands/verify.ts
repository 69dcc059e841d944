/**
 * `cleanroom verify <evidence>`: checks one SEV-SNP report or Nitro attestation document
 * offline (pinned roots, time as a parameter) and prints what was checked.
 */

import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { fromHex } from "../../../attestation/bytes.js";
import { UsageError } from "../../../attestation/errors.js";
import { detectPlatform, type EvidencePolicy, verifyEvidence } from "../../../attestation/evidence.js";
import { certificatesFromInput } from "../../../attestation/pem.js";
import type { Platform } from "../../../attestation/result.js";
import { findVcek } from "../../../attestation/snp/endorsement.js";
import { directoryVcekCache } from "../../../attestation/snp/vcek-cache-node.js";
import { printVerification, reportError } from "../output.js";

interface VerifyFlags {
  platform: "auto" | Platform;
  vcek?: string;
  ask?: string;
  ark?: string;
  certTable?: string;
  at?: string;
  measurement: string[];
  reportData?: string;
  pcr: string[];
  nonce?: string;
  allowDebug?: boolean;
  maxVmpl?: string;
  trustSimRoot?: string;
  vcekCache?: string;
  kds?: boolean;
  product?: "Milan" | "Genoa" | "Turin";
  json?: boolean;
}

const collect = (v: string, all: string[]) => [...all, v];

function hex(value: string, what: string): Uint8Array {
  try {
    return fromHex(value);
  } catch {
    throw new UsageError(`${what} must be hex`);
  }
}

function parseAt(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new UsageError("--at must be an ISO-8601 time");
  return d;
}

function parsePcrs(list: string[]): Record<number, string> | undefined {
  if (!list.length) return undefined;
  const pcrs: Record<number, string> = {};
  for (const item of list) {
    const m = /^(\d{1,2})=([0-9a-fA-F]+)$/.exec(item);
    if (!m) throw new UsageError("--pcr takes N=HEX");
    pcrs[Number(m[1])] = m[2]!.toLowerCase();
  }
  return pcrs;
}

export async function runVerify(file: string, f: VerifyFlags): Promise<number> {
  const bytes = new Uint8Array(readFileSync(file));
  const platform = f.platform === "auto" ? detectPlatform(bytes) : f.platform;
  const read = (p: string | undefined) => (p === undefined ? undefined : new Uint8Array(readFileSync(p)));
  const at = parseAt(f.at);
  const pcrs = parsePcrs(f.pcr);
  const maxVmpl = f.maxVmpl === undefined ? undefined : Number(f.maxVmpl);
  if (maxVmpl !== undefined && !(Number.isInteger(maxVmpl) && maxVmpl >= 0 && maxVmpl <= 3))
    throw new UsageError("--max-vmpl must be 0..3");
  const policy: EvidencePolicy = {
    ...(at ? { at } : {}),
    ...(f.trustSimRoot
      ? { trustedSimRoots: certificatesFromInput(readFileSync(f.trustSimRoot, "utf8")) }
      : {}),
    ...(f.allowDebug ? { allowDebug: true } : {}),
    ...(f.measurement.length ? { measurements: f.measurement.map((m) => m.toLowerCase()) } : {}),
    ...(pcrs ? { pcrs } : {}),
    // Without an expected image this command still checks the hardware chain and policy bits,
    // and prints the measurement for the operator to compare.
    allowAnyMeasurement: !f.measurement.length && !pcrs,
    ...(maxVmpl !== undefined || f.product
      ? {
          snp: {
            ...(maxVmpl !== undefined ? { maxVmpl } : {}),
            ...(f.product ? { product: f.product } : {}),
          },
        }
      : {}),
  };
  const vcek =
    f.vcek || f.certTable || platform !== "sev-snp" || !(f.vcekCache || f.kds)
      ? read(f.vcek)
      : await findVcek(bytes, {
          ...(f.vcekCache ? { cache: directoryVcekCache(f.vcekCache) } : {}),
          ...(f.kds ? { fetch: (url: string) => fetch(url) } : {}),
          ...(f.product ? { product: f.product } : {}),
        });
  const certificates = {
    ...(vcek ? { vcek } : {}),
    ...(f.ask ? { ask: read(f.ask)! } : {}),
    ...(f.ark ? { ark: read(f.ark)! } : {}),
    ...(f.certTable ? { certTable: read(f.certTable)! } : {}),
  };
  const reportData = f.reportData ? hex(f.reportData, "--report-data") : undefined;
  const nonce = f.nonce ? hex(f.nonce, "--nonce") : undefined;
  const result = await verifyEvidence({ platform, evidence: bytes, certificates }, policy, reportData, nonce);
  return printVerification(result, f.json ?? false);
}

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description("verify SEV-SNP or Nitro attestation evidence offline")
    .argument("<evidence>", "SEV-SNP report (1184 bytes) or Nitro attestation document (CBOR)")
    .option("--platform <platform>", "auto | sev-snp | nitro", "auto")
    .option("--vcek <file>", "VCEK or VLEK certificate (DER or PEM)")
    .option("--ask <file>", "ASK or ASVK certificate (DER or PEM)")
    .option("--ark <file>", "ARK certificate; must be a pinned root unless a simulated root is trusted")
    .option("--cert-table <file>", "extended-report certificate table (configfs-tsm auxblob)")
    .option("--at <iso8601>", "verification time (default now)")
    .option("--measurement <hex>", "accepted SEV-SNP launch measurement (repeatable)", collect, [])
    .option("--report-data <hex>", "expected SEV-SNP REPORT_DATA / Nitro user_data (64 bytes)")
    .option("--pcr <n=hex>", "expected Nitro PCR value (repeatable)", collect, [])
    .option("--nonce <hex>", "expected Nitro nonce")
    .option("--max-vmpl <n>", "highest accepted VMPL (default 0)")
    .option("--allow-debug", "accept a debug guest/enclave (its memory is readable by the host)")
    .option("--trust-sim-root <file>", "trust the simulated platform roots in this PEM file")
    .option("--product <name>", "Milan | Genoa | Turin (needed for version 2 reports without --vcek)")
    .option("--vcek-cache <dir>", "look the VCEK up in (and save fetched ones to) this directory")
    .option("--kds", "fetch a missing VCEK from AMD's KDS (network; off by default)")
    .option("--json", "print JSON")
    .action(async (file: string, flags: VerifyFlags) => {
      if (flags.product && !["Milan", "Genoa", "Turin"].includes(flags.product)) {
        process.exitCode = reportError(new UsageError("--product must be Milan, Genoa or Turin"));
        return;
      }
      if (!["auto", "sev-snp", "nitro"].includes(flags.platform)) {
        process.exitCode = reportError(new UsageError("--platform must be auto, sev-snp or nitro"));
        return;
      }
      try {
        process.exitCode = await runVerify(file, flags);
      } catch (e) {
        process.exitCode = reportError(e);
      }
    });
}
