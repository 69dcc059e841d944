/**
 * `cleanroom verify <evidence>`: checks one SEV-SNP report or Nitro attestation document
 * offline (pinned roots, time as a parameter) and prints what was checked. Given the evidence
 * bundle `cleanroom attest --save-evidence` keeps (JSON), it also checks that the evidence binds
 * the bundle's enclave keys, contract and nonce, as the online check does.
 */

import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { bindingData } from "../../../attestation/binding.js";
import { fromHex, toHex } from "../../../attestation/bytes.js";
import { UsageError } from "../../../attestation/errors.js";
import {
  detectPlatform,
  type Evidence,
  type EvidenceBundle,
  type EvidencePolicy,
  unbundleEvidence,
  verifyEvidence,
} from "../../../attestation/evidence.js";
import type { Platform } from "../../../attestation/result.js";
import { fetchCrlForReport, findVcek } from "../../../attestation/snp/endorsement.js";
import { directoryVcekCache } from "../../../attestation/snp/vcek-cache-node.js";
import { addPolicyOptions, evidencePolicy, type PolicyFlags, run } from "../options.js";
import { printVerification } from "../output.js";

interface VerifyFlags extends PolicyFlags {
  platform: "auto" | Platform;
  vcek?: string;
  ask?: string;
  ark?: string;
  certTable?: string;
  at?: string;
  reportData?: string;
  nonce?: string;
  allowDebug?: boolean;
  maxVmpl?: string;
  vcekCache?: string;
  kds?: boolean;
  product?: "Milan" | "Genoa" | "Turin";
  json?: boolean;
}

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

/** A saved evidence bundle: its evidence, and the report data its keys, contract and nonce make. */
async function readBundle(
  text: string,
  file: string,
): Promise<{ evidence: Evidence; reportData: string; bundle: EvidenceBundle }> {
  let bundle: EvidenceBundle;
  try {
    bundle = JSON.parse(text) as EvidenceBundle;
  } catch {
    throw new UsageError(`${file}: neither evidence bytes nor an evidence bundle (JSON)`);
  }
  if (typeof bundle?.nonce !== "string" || !bundle.keys) {
    throw new UsageError(`${file}: not an evidence bundle (cleanroom attest --save-evidence writes one)`);
  }
  const reportData = await bindingData({
    keys: bundle.keys,
    contractDigest: bundle.contractDigest,
    nonce: hex(bundle.nonce, `${file}: nonce`),
  });
  return { evidence: unbundleEvidence(bundle), reportData: toHex(reportData), bundle };
}

export async function runVerify(file: string, given: VerifyFlags): Promise<number> {
  let bytes: Uint8Array = new Uint8Array(readFileSync(file));
  let f = given;
  let bundle: Awaited<ReturnType<typeof readBundle>> | undefined;
  if (bytes[0] === 0x7b /* { */) {
    bundle = await readBundle(new TextDecoder().decode(bytes), file);
    bytes = bundle.evidence.evidence;
    f = {
      ...f,
      platform: bundle.evidence.platform,
      reportData: f.reportData ?? bundle.reportData,
      ...(bundle.evidence.platform === "nitro" ? { nonce: f.nonce ?? bundle.bundle.nonce } : {}),
    };
  }
  const platform = f.platform === "auto" ? detectPlatform(bytes) : f.platform;
  const read = (p: string | undefined) => (p === undefined ? undefined : new Uint8Array(readFileSync(p)));
  const at = parseAt(f.at);
  const maxVmpl = f.maxVmpl === undefined ? undefined : Number(f.maxVmpl);
  if (maxVmpl !== undefined && !(Number.isInteger(maxVmpl) && maxVmpl >= 0 && maxVmpl <= 3))
    throw new UsageError("--max-vmpl must be 0..3");
  const base = await evidencePolicy({
    ...f,
    // Without an expected image this command still checks the hardware chain and policy bits
    // (minimum TCB included), and prints the measurement for the operator to compare.
    allowAnyMeasurement:
      f.allowAnyMeasurement ||
      (!f.measurement.length && !f.pcr.length && f.signingCert === undefined && f.manifest === undefined),
  });
  const lookup = {
    ...(f.vcekCache ? { cache: directoryVcekCache(f.vcekCache) } : {}),
    ...(f.kds ? { fetch: (url: string) => fetch(url) } : {}),
    ...(f.product ? { product: f.product } : {}),
  };
  // The KDS path fetches AMD's CRL for the chain along with (or instead of) the VCEK.
  const kdsCrl = platform === "sev-snp" && f.kds ? [await fetchCrlForReport(bytes, lookup)] : [];
  const crls = [...(base.snp?.crls ?? []), ...kdsCrl];
  const snp = {
    ...base.snp,
    ...(crls.length ? { crls } : {}),
    ...(maxVmpl !== undefined ? { maxVmpl } : {}),
    ...(f.product ? { product: f.product } : {}),
  };
  const policy: EvidencePolicy = {
    ...base,
    ...(at ? { at } : {}),
    ...(f.allowDebug ? { allowDebug: true } : {}),
    ...(Object.keys(snp).length ? { snp } : {}),
  };
  const vcek =
    f.vcek || f.certTable || platform !== "sev-snp" || !(f.vcekCache || f.kds)
      ? read(f.vcek)
      : await findVcek(bytes, lookup);
  const certificates = {
    ...bundle?.evidence.certificates,
    ...(vcek ? { vcek } : {}),
    ...(f.ask ? { ask: read(f.ask)! } : {}),
    ...(f.ark ? { ark: read(f.ark)! } : {}),
    ...(f.certTable ? { certTable: read(f.certTable)! } : {}),
  };
  const reportData = f.reportData ? hex(f.reportData, "--report-data") : undefined;
  const nonce = f.nonce ? hex(f.nonce, "--nonce") : undefined;
  const result = await verifyEvidence({ platform, evidence: bytes, certificates }, policy, reportData, nonce);
  if (bundle) {
    result.claims["enclaveKeys"] = bundle.bundle.keys;
    result.claims["contractDigest"] = bundle.bundle.contractDigest;
  }
  return printVerification(result, f.json ?? false);
}

export function registerVerifyCommand(program: Command): void {
  const cmd = program
    .command("verify")
    .description("verify SEV-SNP or Nitro attestation evidence offline")
    .argument(
      "<evidence>",
      "SEV-SNP report (1184 bytes), Nitro attestation document (CBOR), or a saved evidence bundle (JSON)",
    )
    .option("--platform <platform>", "auto | sev-snp | nitro", "auto")
    .option("--vcek <file>", "VCEK or VLEK certificate (DER or PEM)")
    .option("--ask <file>", "ASK or ASVK certificate (DER or PEM)")
    .option("--ark <file>", "ARK certificate; must be a pinned root unless a simulated root is trusted")
    .option("--cert-table <file>", "extended-report certificate table (configfs-tsm auxblob)")
    .option("--at <iso8601>", "verification time (default now)")
    .option("--report-data <hex>", "expected SEV-SNP REPORT_DATA / Nitro user_data (64 bytes)")
    .option("--nonce <hex>", "expected Nitro nonce")
    .option("--max-vmpl <n>", "highest accepted VMPL (default 0)")
    .option("--allow-debug", "accept a debug guest/enclave (its memory is readable by the host)")
    .option("--product <name>", "Milan | Genoa | Turin (needed for version 2 reports without --vcek)")
    .option("--vcek-cache <dir>", "look the VCEK up in (and save fetched ones to) this directory")
    .option("--kds", "fetch a missing VCEK and the chain's CRL from AMD's KDS (network; off by default)")
    .option("--json", "print JSON");
  addPolicyOptions(cmd).action((file: string, flags: VerifyFlags) =>
    run(async () => {
      if (flags.product && !["Milan", "Genoa", "Turin"].includes(flags.product))
        throw new UsageError("--product must be Milan, Genoa or Turin");
      if (!["auto", "sev-snp", "nitro"].includes(flags.platform))
        throw new UsageError("--platform must be auto, sev-snp or nitro");
      return runVerify(file, flags);
    }, flags.json),
  );
}
