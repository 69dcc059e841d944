/** `cleanroom contract digest|sign|submit`: the party's side of the contract. */
import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { readKeyFile } from "../../node/key-file.js";
import { approveContract, contractDigestHex, submitContract } from "../../sdk/contract.js";
import { HostState } from "../../sdk/state.js";
import {
  addHostOptions,
  addPolicyOptions,
  collect,
  evidencePolicy,
  type HostFlags,
  hostClient,
  type PolicyFlags,
  readContract,
  run,
  stateStore,
} from "../options.js";

/** An approvals file holds one JWS, or a JSON array of them. */
async function readApprovals(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    const text = (await readFile(file, "utf8")).trim();
    if (text.startsWith("[")) {
      let list: unknown;
      try {
        list = JSON.parse(text);
      } catch {
        throw new UsageError("--approval: not JSON");
      }
      if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
        throw new UsageError("--approval: not a list of approvals");
      }
      out.push(...list);
    } else out.push(text);
  }
  return out;
}

export function registerContractCommand(program: Command): void {
  const contract = program.command("contract").description("validate, digest, approve and submit a contract");
  contract
    .command("digest")
    .description("validate FILE and print its digest (SHA-256 of the RFC 8785 form)")
    .argument("<file>")
    .action((file: string) =>
      run(async () => {
        process.stdout.write(`${await contractDigestHex(await readContract(file))}\n`);
        return 0;
      }),
    );
  contract
    .command("sign")
    .description("print (or write) this party's approval of FILE")
    .argument("<file>")
    .requiredOption("--key <file>", "this party's key file")
    .option("--out <file>", "write the approval here instead of stdout")
    .action((file: string, f: { key: string; out?: string }) =>
      run(async () => {
        const approval = await approveContract(await readContract(file), await readKeyFile(f.key));
        if (f.out) await writeFile(f.out, `${approval}\n`, { flag: "wx" });
        else process.stdout.write(`${approval}\n`);
        return 0;
      }),
    );
  const submit = contract
    .command("submit")
    .description("submit FILE with every party's approval, then attest that the enclave holds it")
    .argument("<file>")
    .requiredOption("--approval <file>", "an approval JWS, or a JSON list of them (repeatable)", collect, []);
  addPolicyOptions(addHostOptions(submit)).action(
    (file: string, f: HostFlags & PolicyFlags & { approval: string[] }) =>
      run(async () => {
        const host = hostClient(f);
        const r = await submitContract(
          host,
          await readContract(file),
          await readApprovals(f.approval),
          await evidencePolicy(f),
          await HostState.open(stateStore(f), host.baseUrl),
        );
        process.stdout.write(`contract ${r.digest} accepted; audit head ${r.head.seq} ${r.head.hash}\n`);
        return 0;
      }),
  );
}
