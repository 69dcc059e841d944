/**
 * `cleanroom attest`: fetch the enclave's evidence for a fresh nonce, verify it against the
 * pinned image and the contract, print ✓/✗ per check. Exit 0 verified, 1 refused, 2 usage/I/O.
 * A verified attestation is cached in the state directory for the commands that send data.
 */
import type { Command } from "commander";
import { checkAttestation, policyFingerprint } from "../../sdk/attest.js";
import { contractDigestHex } from "../../sdk/contract.js";
import { HostState } from "../../sdk/state.js";
import {
  addHostOptions,
  addPolicyOptions,
  evidencePolicy,
  type HostFlags,
  hostClient,
  type PolicyFlags,
  readContract,
  run,
  stateStore,
} from "../options.js";
import { printVerification } from "../output.js";

interface AttestFlags extends HostFlags, PolicyFlags {
  contract: string;
  json?: boolean;
}

export function registerAttestCommand(program: Command): void {
  const cmd = program
    .command("attest")
    .description("verify the enclave's attestation evidence (chain, measurement, policy, binding)")
    .requiredOption("--contract <file>", "the contract the enclave must hold")
    .option("--json", "print the result as JSON");
  addPolicyOptions(addHostOptions(cmd)).action((f: AttestFlags) =>
    run(async () => {
      const host = hostClient(f);
      const policy = await evidencePolicy(f);
      const contractDigest = await contractDigestHex(await readContract(f.contract));
      const a = await checkAttestation(host, { policy, contractDigest });
      if (a.keys) {
        const state = await HostState.open(stateStore(f), host.baseUrl);
        await state.saveAttestation({
          policy: await policyFingerprint(policy),
          contractDigest,
          keys: a.keys,
          result: a.result,
          verifiedAt: new Date().toISOString(),
        });
      }
      return printVerification(a.result, f.json ?? false);
    }),
  );
}
