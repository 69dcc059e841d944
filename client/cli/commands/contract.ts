/** `cleanroom contract digest|review|sign|submit`: the party's side of the contract. */
import { readFile, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { QueryCheckError } from "../../../protocol/rules/errors.js";
import { renderReview } from "../../../protocol/rules/review.js";
import { readKeyFile } from "../../node/key-file.js";
import { reviewContractWithDuckDb } from "../../node/review.js";
import { approveContract, contractDigestHex, submitContract } from "../../sdk/contract.js";
import { findParty } from "../../sdk/keys.js";
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
import { EXIT_OK, EXIT_REFUSED } from "../output.js";

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

/** Asks on the terminal (question on stderr, answer from stdin); only "y" or "yes" is a yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^\s*y(es)?\s*$/i.test(await rl.question(question));
  } finally {
    rl.close();
  }
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
    .command("review")
    .description(
      "validate FILE and print what signing it approves: datasets, what each query reads and releases, warnings",
    )
    .argument("<file>")
    .option("--json", "print the review as JSON")
    .action((file: string, f: { json?: boolean }) =>
      run(async () => {
        const review = await reviewContractWithDuckDb(await readContract(file));
        process.stdout.write(f.json ? `${JSON.stringify(review, null, 2)}\n` : renderReview(review));
        return review.admitted ? EXIT_OK : EXIT_REFUSED;
      }),
    );
  contract
    .command("sign")
    .description("show the review of FILE, confirm, and print (or write) this party's approval of it")
    .argument("<file>")
    .requiredOption("--key <file>", "this party's key file")
    .option("--out <file>", "write the approval here instead of stdout")
    .option("--yes", "sign without asking (after reading `cleanroom contract review FILE`)")
    .action((file: string, f: { key: string; out?: string; yes?: boolean }) =>
      run(async () => {
        const contract = await readContract(file);
        const keys = await readKeyFile(f.key);
        const party = findParty(contract, keys);
        if (!f.yes && !process.stdin.isTTY) {
          throw new UsageError(
            `contract sign: no terminal to confirm on; read \`cleanroom contract review ${file}\`, then pass --yes`,
          );
        }
        const review = await reviewContractWithDuckDb(contract);
        // The review goes to stderr: stdout carries the approval when there is no --out.
        if (!f.yes) process.stderr.write(`${renderReview(review)}\n`);
        const refused = review.queries.find((q) => q.status === "refused");
        // The enclave would not load it: an approval of it could never be used.
        if (refused) throw new QueryCheckError(refused.id, refused.refusal ?? "refused");
        const what = `contract ${review.contract} (digest ${review.digest}) as ${party.id}`;
        if (!f.yes && !(await confirm(`Sign ${what}? [y/N] `))) {
          process.stderr.write("not signed\n");
          return EXIT_REFUSED;
        }
        if (f.yes) {
          process.stderr.write(
            `signing ${what}: ${review.queries.length} queries, ${review.warnings.length} warnings\n`,
          );
        }
        const approval = await approveContract(contract, keys);
        if (f.out) await writeFile(f.out, `${approval}\n`, { flag: "wx" });
        else process.stdout.write(`${approval}\n`);
        return EXIT_OK;
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
