/**
 * Options shared by the commands that talk to a clean room: where it is, which contract, which
 * evidence to accept, whose keys, where state lives. Each can also come from an environment
 * variable or the profile (config.ts); commands read the merged values and name all three
 * places when one is missing. `run` turns any failure into `error CODE: message` and an exit code.
 */

import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { sha384, toHex } from "../../attestation/bytes.js";
import { isCleanroomError, UsageError } from "../../attestation/errors.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import { checkNitroPolicyConfig, type NitroPolicyOptions } from "../../attestation/nitro/policy.js";
import { certificatesFromInput, toDer } from "../../attestation/pem.js";
import { parseMinimumTcbSpecs } from "../../attestation/snp/policy.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import { ContractError } from "../../protocol/contract/errors.js";
import type { Contract, Dataset } from "../../protocol/contract/types.js";
import { validateContractJson } from "../../protocol/contract/validate.js";
import { FileStateStore } from "../node/file-store.js";
import { readKeyFile } from "../node/key-file.js";
import { readExpectedImage } from "../node/manifest.js";
import { CleanroomClient } from "../sdk/client.js";
import { HostClient } from "../sdk/http.js";
import { findParty, type PartyKeys } from "../sdk/keys.js";
import { SETTINGS, type SettingName, whereToSet } from "./config.js";
import { EXIT_USAGE, reportError } from "./output.js";

export const collect = (v: string, all: string[]): string[] => [...all, v];

export interface HostFlags {
  url?: string;
  state?: string;
  timeout?: string;
}

export interface PolicyFlags {
  measurement: string[];
  /** A release manifest (cleanroom-image-manifest/1) or a simulated platform's expected.json. */
  manifest?: string;
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
  contract?: string;
  key?: string;
  party?: string;
  json?: boolean;
}

function option(name: SettingName, flags: string, description: string): Option {
  const env = SETTINGS[name]!.env;
  const o = new Option(flags, description);
  return env ? o.env(env) : o;
}

const list = (o: Option): Option => o.argParser(collect).default([]);

/** A setting every command of this kind needs: missing, it names the flag, variable and file key. */
export function need<T>(value: T | undefined, name: SettingName): T {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    throw new UsageError(`missing ${SETTINGS[name]!.flag}: ${whereToSet(name)}`);
  }
  return value;
}

export function addJsonOption(cmd: Command): Command {
  return cmd.option("--json", "print one JSON document on stdout (messages stay on stderr)");
}

export function addHostOptions(cmd: Command): Command {
  return cmd
    .addOption(option("url", "--url <url>", "the clean room host, e.g. https://cleanroom.example"))
    .addOption(option("state", "--state <dir>", "state directory (default ~/.cleanroom)"))
    .addOption(
      option("timeout", "--timeout <ms>", "timeout of control requests in milliseconds").default("30000"),
    );
}

export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .addOption(
      list(option("measurement", "--measurement <hex>", "accepted SEV-SNP launch measurement (repeatable)")),
    )
    .addOption(
      option(
        "manifest",
        "--manifest <file>",
        "accept the images of this release manifest (manifest.json) or simulated platform (expected.json)",
      ),
    )
    .addOption(list(option("pcr", "--pcr <n=hex>", "expected Nitro PCR (repeatable)")))
    .addOption(
      list(
        option(
          "trustSimRoot",
          "--trust-sim-root <file>",
          "trust the simulated platform roots in this PEM file (repeatable)",
        ),
      ),
    )
    .addOption(
      list(
        option(
          "minTcb",
          "--min-tcb <spec>",
          "SEV-SNP minimum REPORTED_TCB, [PRODUCT:]none|default|component=N,...|TCB_VERSION hex " +
            "(components bootloader, tee, snp, microcode, fmc; repeatable; default: AMD-SB-3019 levels)",
        ),
      ),
    )
    .addOption(
      list(
        option("crl", "--crl <file>", "SEV-SNP CRL (DER or PEM) from AMD's KDS or the operator (repeatable)"),
      ),
    )
    .addOption(
      option(
        "signingCert",
        "--signing-cert <file>",
        "Nitro image signing certificate (PEM or DER); pin it with --pcr 8",
      ),
    )
    .addOption(
      option("allowAnyMeasurement", "--allow-any-measurement", "accept any image (development only)"),
    );
}

export function addContractOption(
  cmd: Command,
  description = "the contract (JSON) this party approved",
): Command {
  return cmd.addOption(option("contract", "--contract <file>", description));
}

export function addKeyOptions(cmd: Command): Command {
  return cmd
    .addOption(option("key", "--key <file>", "this party's key file (cleanroom keygen)"))
    .addOption(option("party", "--party <id>", "the party the key must belong to (checked)"));
}

/** --url, --contract, --key, --party, --state, the policy options and --json. */
export function addClientOptions(cmd: Command): Command {
  addPolicyOptions(addHostOptions(cmd));
  addContractOption(cmd);
  addKeyOptions(cmd);
  return addJsonOption(cmd);
}

export function hostClient(f: HostFlags): HostClient {
  const timeoutMs = Number(f.timeout ?? "30000");
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0)
    throw new UsageError("--timeout must be a positive integer of milliseconds");
  return new HostClient(need(f.url, "url"), { timeoutMs });
}

export async function evidencePolicy(f: PolicyFlags): Promise<EvidencePolicy> {
  const policy: EvidencePolicy = {};
  for (const m of f.measurement) {
    if (!/^[0-9a-fA-F]{96}$/.test(m)) throw new UsageError("--measurement must be 96 hex characters");
  }
  const image = f.manifest ? await readExpectedImage(f.manifest) : undefined;
  const measurements = [...f.measurement.map((m) => m.toLowerCase()), ...(image?.measurements ?? [])];
  if (measurements.length) policy.measurements = [...new Set(measurements)];
  if (f.pcr.length) {
    const pcrs: Record<number, string> = {};
    for (const item of f.pcr) {
      const m = /^(0|[1-9]|[12][0-9]|3[01])=([0-9a-fA-F]{96})$/.exec(item);
      if (!m) throw new UsageError("--pcr takes N=HEX: N 0..31, HEX 96 hex characters (48 bytes)");
      if (pcrs[Number(m[1])] !== undefined) throw new UsageError("--pcr names one index twice");
      pcrs[Number(m[1])] = m[2]!.toLowerCase();
    }
    policy.pcrs = pcrs;
  } else if (image?.pcrs) policy.pcrs = image.pcrs;
  if (f.signingCert !== undefined) {
    const der = toDer(await readFile(f.signingCert));
    policy.nitro = { signingCertificateDigest: toHex(await sha384(der)) };
  }
  if (f.allowAnyMeasurement) policy.allowAnyMeasurement = true;
  if (!policy.measurements && !policy.pcrs && !policy.allowAnyMeasurement) {
    throw new UsageError(
      `no expected image: pass --measurement, --manifest or --pcr (or --allow-any-measurement), or ${whereToSet("manifest").replace(/^pass --manifest, /, "")}`,
    );
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
    if (!roots.length)
      throw new UsageError(`--trust-sim-root ${f.trustSimRoot.join(", ")}: no certificate in it`);
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
    if (e instanceof ContractError) throw new UsageError(`contract file ${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** The contract named by --contract (or its variable or profile). */
export function contractPath(f: { contract?: string }): string {
  return need(f.contract, "contract");
}

/** The key file named by --key, checked against --party when one is set. */
export async function partyKeys(f: { key?: string; party?: string }, contract: Contract): Promise<PartyKeys> {
  const path = need(f.key, "key");
  const keys = await readKeyFile(path);
  let party: string;
  try {
    party = findParty(contract, keys).id;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(
      `key file ${path} is not the key of any party of contract ${contract.id} (parties: ${contract.parties.map((p) => p.id).join(", ")})`,
    );
  }
  if (f.party !== undefined && f.party !== party) {
    throw new UsageError(`key file ${path} belongs to party ${party}, not to ${f.party} (--party)`);
  }
  return keys;
}

export function stateStore(f: { state?: string }): FileStateStore {
  return new FileStateStore(f.state);
}

export async function openClient(f: ClientFlags): Promise<CleanroomClient> {
  const host = hostClient(f);
  const contract = await readContract(contractPath(f));
  const keys = await partyKeys(f, contract);
  return CleanroomClient.open({
    host,
    store: stateStore(f),
    policy: await evidencePolicy(f),
    contract,
    keys,
    decrypt: decryptBytes,
  });
}

/** The dataset `id` of the contract, or the only one this party owns when `id` is not given. */
export function datasetOf(contract: Contract, party: string, id: string | undefined): Dataset {
  const owned = contract.datasets.filter((d) => d.owner === party);
  if (id === undefined) {
    if (owned.length === 1) return owned[0]!;
    throw new UsageError(
      `missing --dataset: party ${party} owns ${owned.length ? owned.map((d) => d.id).join(", ") : "no dataset"} in contract ${contract.id}`,
    );
  }
  const ds = contract.datasets.find((d) => d.id === id);
  if (!ds) {
    throw new UsageError(
      `no dataset ${id} in contract ${contract.id} (datasets: ${contract.datasets.map((d) => d.id).join(", ")})`,
    );
  }
  return ds;
}

/**
 * Runs a command body; failures print `error CODE: message` on stderr (and, with --json, the same
 * as JSON on stdout) and set the exit code (2 for any usage or I/O error).
 */
export async function run(body: () => Promise<number | undefined>, json = false): Promise<void> {
  try {
    process.exitCode = (await body()) ?? 0;
  } catch (e) {
    const code = reportError(e, process.stderr, json ? process.stdout : undefined);
    process.exitCode = e instanceof UsageError ? EXIT_USAGE : code;
  }
}
