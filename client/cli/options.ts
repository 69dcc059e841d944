/**
 * Options shared by the commands that talk to a clean room: where it is, which contract, which
 * evidence to accept, whose keys, where state lives; and the wrapper that turns any failure
 * into `error CODE: message` and an exit code.
 */

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { certificatesFromInput } from "../../attestation/pem.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import { ContractError } from "../../protocol/contract/errors.js";
import type { Contract } from "../../protocol/contract/types.js";
import { validateContractJson } from "../../protocol/contract/validate.js";
import { FileStateStore } from "../node/file-store.js";
import { readKeyFile } from "../node/key-file.js";
import { CleanroomClient } from "../sdk/client.js";
import { HostClient } from "../sdk/http.js";
import { reportError } from "./output.js";

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
      const m = /^(\d{1,2})=([0-9a-fA-F]+)$/.exec(item);
      if (!m) throw new UsageError("--pcr takes N=HEX");
      pcrs[Number(m[1])] = m[2]!.toLowerCase();
    }
    policy.pcrs = pcrs;
  }
  if (f.allowAnyMeasurement) policy.allowAnyMeasurement = true;
  if (!policy.measurements && !policy.pcrs && !policy.allowAnyMeasurement) {
    throw new UsageError("give --measurement, --pcr or --allow-any-measurement");
  }
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

/** Runs a command body; failures print `error CODE: message` and set the exit code. */
export async function run(body: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? 0;
  } catch (e) {
    process.exitCode = reportError(e);
  }
}
