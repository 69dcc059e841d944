/**
 * Options shared by the commands that talk to a clean room: where it is, which contract, which
 * evidence to accept, whose keys, where state lives; and the wrapper that turns any failure
 * into `error CODE: message` and an exit code.
 */

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { sha384, toHex } from "../../attestation/bytes.js";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { checkNitroPolicyConfig, type NitroPolicyOptions } from "../../attestation/nitro/policy.js";
import { certificatesFromInput, toDer } from "../../attestation/pem.js";
import { parseMinimumTcbSpecs } from "../../attestation/snp/policy.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import { ContractError } from "../../protocol/contract/errors.js";
import type { Contract } from "../../protocol/contract/types.js";
import { validateContractJson } from "../../protocol/contract/validate.js";
import { FileStateStore } from "../node/file-store.js";
import { readKeyFile } from "../node/key-file.js";
import { CleanroomClient } from "../sdk/client.js";
import { HostClient } from "../sdk/http.js";
import { EXIT_USAGE, reportError } from "./output.js";

export const collect = (v: string, all: string[]): string[] => [...all, v];

export interface HostFlags {
  url: string;
  state?: string;
  timeout?: string;
}

export interface PolicyFlags {
  measurement: string[];
  pcr: string[];
  trustSimRoot: string[];
  allowAnyMeasurement?: boolean;
  /** `--min-tcb` specs, in order (attestation/snp/policy.ts parseMinimumTcbSpecs). */
  minTcb?: string[];
  /** `--crl` files (DER or PEM). */
  crl?: string[];
  /** `--signing-cert`: the Nitro image signing certificate (pinned with --pcr 8). */
  signingCert?: string;
}

export interface ClientFlags extends HostFlags, PolicyFlags {
  contract: string;
  key: string;
}

export function addHostOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--url <url>", "the clean room host, e.g. https://cleanroom.example")
    .option("--state <dir>", "state directory (default ~/.cleanroom or $CLEANROOM_STATE)")
    .option("--timeout <ms>", "timeout of control requests in milliseconds", "30000");
}

export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .option("--measurement <hex>", "accepted SEV-SNP launch measurement (repeatable)", collect, [])
    .option("--pcr <n=hex>", "expected Nitro PCR (repeatable)", collect, [])
    .option(
      "--trust-sim-root <file>",
      "trust the simulated platform roots in this PEM file (repeatable)",
      collect,
      [],
    )
    .option(
      "--min-tcb <spec>",
      "SEV-SNP minimum REPORTED_TCB, [PRODUCT:]none|default|component=N,...|TCB_VERSION hex " +
        "(components bootloader, tee, snp, microcode, fmc; repeatable; default: AMD-SB-3019 levels)",
      collect,
      [],
    )
    .option(
      "--crl <file>",
      "SEV-SNP CRL (DER or PEM) from AMD's KDS or the operator (repeatable)",
      collect,
      [],
    )
    .option("--signing-cert <file>", "Nitro image signing certificate (PEM or DER); pin it with --pcr 8")
    .option("--allow-any-measurement", "accept any image (development only)");
}

/** --url, --contract, --key, --state and the policy options. */
export function addClientOptions(cmd: Command): Command {
  addPolicyOptions(addHostOptions(cmd));
  return cmd
    .requiredOption("--contract <file>", "the contract (JSON) this party approved")
    .requiredOption("--key <file>", "this party's key file (cleanroom keygen)");
}

export function hostClient(f: HostFlags): HostClient {
  const timeoutMs = Number(f.timeout ?? "30000");
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0)
    throw new UsageError("--timeout must be a positive integer");
  return new HostClient(f.url, { timeoutMs });
}

export async function evidencePolicy(f: PolicyFlags): Promise<EvidencePolicy> {
  const policy: EvidencePolicy = {};
  if (f.measurement.length) {
    for (const m of f.measurement) {
      if (!/^[0-9a-fA-F]{96}$/.test(m)) throw new UsageError("--measurement must be 96 hex characters");
    }
    policy.measurements = f.measurement.map((m) => m.toLowerCase());
  }
  if (f.pcr.length) {
    const pcrs: Record<number, string> = {};
    for (const item of f.pcr) {
      const m = /^(0|[1-9]|[12][0-9]|3[01])=([0-9a-fA-F]{96})$/.exec(item);
      if (!m) throw new UsageError("--pcr takes N=HEX: N 0..31, HEX 96 hex characters (48 bytes)");
      if (pcrs[Number(m[1])] !== undefined) throw new UsageError("--pcr names one index twice");
      pcrs[Number(m[1])] = m[2]!.toLowerCase();
    }
    policy.pcrs = pcrs;
  }
  if (f.signingCert !== undefined) {
    const der = toDer(await readFile(f.signingCert));
    policy.nitro = { signingCertificateDigest: toHex(await sha384(der)) };
  }
  if (f.allowAnyMeasurement) policy.allowAnyMeasurement = true;
  if (!policy.measurements && !policy.pcrs && !policy.allowAnyMeasurement) {
    throw new UsageError("give --measurement, --pcr or --allow-any-measurement");
  }
  // PCRs given are meant to pin a Nitro image: refuse a set that does not (e.g. only --pcr 3).
  if (policy.pcrs || policy.nitro) {
    const nitro: NitroPolicyOptions = {
      ...policy.nitro,
      ...(policy.pcrs ? { pcrs: policy.pcrs } : {}),
      ...(policy.allowAnyMeasurement ? { allowAnyImage: true } : {}),
    };
    try {
      await checkNitroPolicyConfig(nitro);
    } catch (e) {
      if (!isCleanroomError(e)) throw e;
      throw new UsageError(
        "--pcr must pin PCR0, PCR1 and PCR2, or PCR8 together with --signing-cert (its certificate)",
        { cause: e },
      );
    }
  }
  const snp: NonNullable<EvidencePolicy["snp"]> = {};
  if (f.minTcb?.length) snp.minimumTcbByProduct = parseMinimumTcbSpecs(f.minTcb);
  if (f.crl?.length)
    snp.crls = await Promise.all(f.crl.map(async (file) => new Uint8Array(await readFile(file))));
  if (Object.keys(snp).length) policy.snp = snp;
  if (f.trustSimRoot.length) {
    const roots: Uint8Array[] = [];
    for (const file of f.trustSimRoot) roots.push(...certificatesFromInput(await readFile(file, "utf8")));
    if (!roots.length) throw new UsageError("--trust-sim-root: no certificate in the file");
    policy.trustedSimRoots = roots;
  }
  return policy;
}

/** A contract file that does not validate is a usage error here (exit 2), with the rule it broke. */
export async function readContract(path: string): Promise<Contract> {
  const bytes = await readFile(path);
  try {
    return validateContractJson(bytes);
  } catch (e) {
    if (e instanceof ContractError) throw new UsageError(`contract file: ${e.message}`, { cause: e });
    throw e;
  }
}

export function stateStore(f: { state?: string }): FileStateStore {
  return new FileStateStore(f.state);
}

export async function openClient(f: ClientFlags): Promise<CleanroomClient> {
  return CleanroomClient.open({
    host: hostClient(f),
    store: stateStore(f),
    policy: await evidencePolicy(f),
    contract: await readContract(f.contract),
    keys: await readKeyFile(f.key),
    decrypt: decryptBytes,
  });
}

/**
 * Runs a command body; failures print `error CODE: message` and set the exit code (2 for any
 * usage error, policy configuration errors included).
 */
export async function run(body: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? 0;
  } catch (e) {
    const code = reportError(e);
    process.exitCode = e instanceof UsageError ? EXIT_USAGE : code;
  }
}
