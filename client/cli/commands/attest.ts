/**
 * `cleanroom attest`: fetch the enclave's evidence for a fresh nonce, verify it against the
 * pinned image and the contract, print ✓/✗ per check. Exit 0 verified, 1 refused, 2 usage/I/O.
 * A verified attestation is cached in the state directory for the commands that send data.
 * `--save-evidence FILE` keeps the raw evidence and its certificates for `cleanroom verify`;
 * `--accept-reset` is how a party says that the clean room behind this URL was reset on purpose.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import type { Command } from "commander";
import { bindingData } from "../../../attestation/binding.js";
import { toHex } from "../../../attestation/bytes.js";
import { UsageError } from "../../../attestation/errors.js";
import { unbundleEvidence } from "../../../attestation/evidence.js";
import { type AttestationCheck, checkAttestation, policyFingerprint } from "../../sdk/attest.js";
import { contractDigestHex } from "../../sdk/contract.js";
import { HostState } from "../../sdk/state.js";
import {
  addContractOption,
  addHostOptions,
  addJsonOption,
  addPolicyOptions,
  contractPath,
  evidencePolicy,
  type HostFlags,
  hostClient,
  type PolicyFlags,
  readContract,
  run,
  stateStore,
} from "../options.js";
import { printVerification, say, verificationJson } from "../output.js";

interface AttestFlags extends HostFlags, PolicyFlags {
  contract?: string;
  json?: boolean;
  saveEvidence?: string;
  acceptReset?: boolean;
}

/** The files `--save-evidence FILE` writes: FILE itself, and its certificates beside it. */
export function evidenceFiles(file: string, check: AttestationCheck): { path: string; bytes: Uint8Array }[] {
  const e = unbundleEvidence(check.bundle);
  const stem = join(dirname(file), basename(file, extname(file)));
  const out = [{ path: file, bytes: e.evidence }];
  const names = { vcek: "vcek.der", ask: "ask.der", ark: "ark.der", certTable: "cert-table.bin" } as const;
  for (const [k, name] of Object.entries(names)) {
    const bytes = e.certificates?.[k as keyof typeof names];
    if (bytes) out.push({ path: `${stem}.${name}`, bytes });
  }
  out.push({
    path: `${stem}.bundle.json`,
    bytes: new TextEncoder().encode(`${JSON.stringify(check.bundle, null, 2)}\n`),
  });
  return out;
}

/** Writes the evidence files (none is overwritten); returns `cleanroom verify` arguments for them. */
async function saveEvidence(
  file: string,
  check: AttestationCheck,
  f: AttestFlags,
  at: string,
): Promise<string[]> {
  const files = evidenceFiles(file, check);
  // All or nothing: no file is written when one of them would overwrite something.
  const taken = files.find(({ path }) => existsSync(path));
  if (taken) throw new UsageError(`${taken.path} already exists; choose another --save-evidence name`);
  for (const { path, bytes } of files) await writeFile(path, bytes, { flag: "wx", mode: 0o644 });
  const reportData = await bindingData({
    keys: check.bundle.keys,
    contractDigest: check.bundle.contractDigest,
    nonce: check.nonce,
  });
  const cert = (suffix: string, flag: string) => {
    const found = files.find((x) => x.path.endsWith(`.${suffix}`));
    return found ? [flag, found.path] : [];
  };
  const pins = [
    ...f.measurement.flatMap((m) => ["--measurement", m]),
    ...(f.manifest ? ["--manifest", f.manifest] : []),
    ...f.pcr.flatMap((p) => ["--pcr", p]),
    ...f.trustSimRoot.flatMap((r) => ["--trust-sim-root", r]),
  ];
  return [
    "cleanroom",
    "verify",
    file,
    ...cert("vcek.der", "--vcek"),
    ...cert("ask.der", "--ask"),
    ...cert("ark.der", "--ark"),
    ...cert("cert-table.bin", "--cert-table"),
    "--report-data",
    toHex(reportData),
    ...(check.bundle.platform === "nitro" ? ["--nonce", check.bundle.nonce] : []),
    "--at",
    at,
    ...pins,
  ];
}

const shellWord = (w: string) => (/^[\w./:=@+-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`);

export function registerAttestCommand(program: Command): void {
  const cmd = program
    .command("attest")
    .description("verify the enclave's attestation evidence (chain, measurement, policy, binding)")
    .option("--save-evidence <file>", "also write the raw evidence here, its certificates beside it")
    .option(
      "--accept-reset",
      "the clean room at this URL was reset on purpose: forget the audit log seen there before",
    );
  addJsonOption(
    addContractOption(addPolicyOptions(addHostOptions(cmd)), "the contract the enclave must hold"),
  );
  cmd.action((f: AttestFlags) =>
    run(async () => {
      const host = hostClient(f);
      const policy = await evidencePolicy(f);
      const contractDigest = await contractDigestHex(await readContract(contractPath(f)));
      const a = await checkAttestation(host, { policy, contractDigest });
      const state = await HostState.open(stateStore(f), host.baseUrl);
      const at = new Date().toISOString();
      if (a.keys) {
        await state.saveAttestation({
          policy: await policyFingerprint(policy),
          contractDigest,
          keys: a.keys,
          result: a.result,
          verifiedAt: at,
        });
      }
      let reset: "forgotten" | "refused" | undefined;
      if (f.acceptReset) {
        // A reset stack may hold no contract yet: then a genuine enclave holding none is enough.
        const genuine =
          a.keys ??
          (a.bundle.contractDigest === null
            ? (await checkAttestation(host, { policy, contractDigest: null })).keys
            : undefined);
        if (genuine) await state.forgetHead();
        reset = genuine ? "forgotten" : "refused";
      }
      const verify = f.saveEvidence ? await saveEvidence(f.saveEvidence, a, f, at) : undefined;
      if (f.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              ...verificationJson(a.result),
              ...(reset ? { reset } : {}),
              ...(verify ? { evidence: verify[2], verify: verify.slice(1) } : {}),
            },
            null,
            2,
          )}\n`,
        );
      } else printVerification(a.result, false);
      if (!a.result.verified && a.bundle.contractDigest === null) {
        say("the enclave holds no contract yet: submit it first (cleanroom contract submit)");
      }
      if (reset === "forgotten") say(`the audit log seen at ${host.baseUrl} before is forgotten`);
      if (reset === "refused") say("the enclave did not verify: the audit log seen before is kept");
      if (verify) say(`evidence saved; check it offline with:\n  ${verify.map(shellWord).join(" ")}`);
      return a.result.verified ? 0 : 1;
    }, f.json),
  );
}
