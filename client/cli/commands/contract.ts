/**
 * `cleanroom contract init|digest|review|sign|submit`: the party's side of the contract. The
 * contract file is the argument, or the profile's `contract` when none is given.
 */
import { createWriteStream } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { QueryCheckError } from "../../../protocol/rules/errors.js";
import { renderReview } from "../../../protocol/rules/review.js";
import { reviewContractWithDuckDb } from "../../node/review.js";
import { checkAttestation, policyFingerprint } from "../../sdk/attest.js";
import { approveContract, contractDigestHex, submitContract } from "../../sdk/contract.js";
import {
  sampleRows,
  TEMPLATE_DATASETS,
  type TemplateParty,
  templateContract,
} from "../../sdk/contract-template.js";
import { findParty, loadPartyKeys } from "../../sdk/keys.js";
import { HostState } from "../../sdk/state.js";
import {
  addContractOption,
  addHostOptions,
  addJsonOption,
  addKeyOptions,
  addPolicyOptions,
  collect,
  evidencePolicy,
  type HostFlags,
  hostClient,
  need,
  type PolicyFlags,
  partyKeys,
  readContract,
  run,
  stateStore,
} from "../options.js";
import { EXIT_OK, EXIT_REFUSED, printJson, say } from "../output.js";

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
        throw new UsageError(`--approval ${file}: not JSON`);
      }
      if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
        throw new UsageError(`--approval ${file}: not a list of approvals`);
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

/** The contract argument, or the profile's. */
function fileOf(file: string | undefined, f: { contract?: string }): string {
  return file ?? need(f.contract, "contract");
}

/** `--party ID=FILE`: a key file (its public half is used) or the public keys keygen printed. */
async function templateParty(spec: string): Promise<TemplateParty> {
  const eq = spec.indexOf("=");
  const id = spec.slice(0, eq);
  const file = spec.slice(eq + 1);
  if (eq < 1 || !/^[a-z][a-z0-9_-]{0,63}$/.test(id) || file === "") {
    throw new UsageError(`--party takes ID=FILE with ID like advertiser (lowercase), not ${spec}`);
  }
  const text = await readFile(file, "utf8");
  let doc: { kind?: unknown; signingKey?: JsonWebKey; ageRecipient?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`--party ${id}: ${file} is not JSON`);
  }
  if (doc?.kind !== undefined) {
    const keys = await loadPartyKeys(text);
    return { id, signingKey: keys.signingKey, ageRecipient: keys.ageRecipient };
  }
  const jwk = doc?.signingKey;
  if (jwk?.kty !== "EC" || jwk.crv !== "P-256" || typeof doc.ageRecipient !== "string") {
    throw new UsageError(
      `--party ${id}: ${file} is neither a key file nor the public keys cleanroom keygen prints`,
    );
  }
  return { id, signingKey: jwk, ageRecipient: doc.ageRecipient };
}

interface InitFlags {
  party: string[];
  id: string;
  out: string;
  sampleData?: boolean;
  people: string;
  json?: boolean;
}

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  await pipeline(Readable.from(lines), createWriteStream(path, { flags: "wx" }));
}

function registerInit(contract: Command): void {
  const init = contract
    .command("init")
    .description("write a contract template naming the parties' own keys (edit it, then review and sign it)")
    .option(
      "--party <id=file>",
      "a party and its key file or published public keys: first the advertiser, then the publisher",
      collect,
      [],
    )
    .option("--id <name>", "the collaboration's name", "measurement-collaboration")
    .option("--out <file>", "where to write the contract (must not exist)", "contract.json")
    .option("--sample-data", "also write sample CSVs (e-mails in the clear) beside it, to try the flow")
    .option("--people <n>", "people in the sample data", "2000");
  addJsonOption(init).action((f: InitFlags) =>
    run(async () => {
      if (f.party.length !== 2) {
        throw new UsageError(
          "contract init needs two --party ID=FILE: the advertiser (owns the purchases), then the publisher (owns the exposures)",
        );
      }
      const [advertiser, publisher] = await Promise.all(f.party.map(templateParty));
      if (advertiser!.id === publisher!.id) throw new UsageError("--party: the two parties need two ids");
      const people = Number(f.people);
      if (!Number.isSafeInteger(people) || people < 100 || people > 1_000_000) {
        throw new UsageError("--people must be a whole number from 100 to 1000000");
      }
      const doc = templateContract(f.id, advertiser!, publisher!);
      await writeFile(f.out, `${JSON.stringify(doc, null, 2)}\n`, { flag: "wx" });
      const samples: { dataset: string; file: string }[] = [];
      if (f.sampleData) {
        for (const which of ["purchases", "exposures"] as const) {
          const file = join(dirname(f.out), `${TEMPLATE_DATASETS[which]}.emails.csv`);
          await writeLines(file, sampleRows(which, people));
          samples.push({ dataset: TEMPLATE_DATASETS[which], file });
        }
      }
      const digest = await contractDigestHex(doc);
      if (f.json) printJson({ contract: f.out, digest, samples });
      else {
        say(
          `wrote ${f.out}: ${doc.datasets.length} datasets, ${doc.queries.length} queries (digest ${digest})`,
        );
        for (const s of samples) say(`wrote ${s.file}: sample rows of ${s.dataset}, e-mails in the clear`);
        say(`next: edit it, then cleanroom contract review ${f.out}`);
      }
      return 0;
    }, f.json),
  );
}

export function registerContractCommand(program: Command): void {
  const contract = program
    .command("contract")
    .description("start, validate, digest, review, approve and submit a contract");
  registerInit(contract);

  const digest = contract
    .command("digest")
    .description("validate FILE and print its digest (SHA-256 of the RFC 8785 form)")
    .argument("[file]", "the contract (default: the profile's)");
  addJsonOption(addContractOption(digest)).action(
    (file: string | undefined, f: { contract?: string; json?: boolean }) =>
      run(async () => {
        const path = fileOf(file, f);
        const doc = await readContract(path);
        const hex = await contractDigestHex(doc);
        if (f.json) printJson({ contract: doc.id, file: path, digest: hex });
        else process.stdout.write(`${hex}\n`);
        return 0;
      }, f.json),
  );

  const review = contract
    .command("review")
    .description(
      "validate FILE and print what signing it approves: datasets, what each query reads and releases, warnings",
    )
    .argument("[file]", "the contract (default: the profile's)");
  addJsonOption(addContractOption(review)).action(
    (file: string | undefined, f: { contract?: string; json?: boolean }) =>
      run(async () => {
        const report = await reviewContractWithDuckDb(await readContract(fileOf(file, f)));
        process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : renderReview(report));
        return report.admitted ? EXIT_OK : EXIT_REFUSED;
      }, f.json),
  );

  const sign = contract
    .command("sign")
    .description("show the review of FILE, confirm, and print (or write) this party's approval of it")
    .argument("[file]", "the contract (default: the profile's)")
    .option("--out <file>", "write the approval here instead of stdout")
    .option("--yes", "sign without asking (after reading `cleanroom contract review FILE`)");
  addJsonOption(addKeyOptions(addContractOption(sign))).action(
    (
      file: string | undefined,
      f: { contract?: string; key?: string; party?: string; out?: string; yes?: boolean; json?: boolean },
    ) =>
      run(async () => {
        const path = fileOf(file, f);
        const doc = await readContract(path);
        const keys = await partyKeys(f, doc);
        const party = findParty(doc, keys);
        if (!f.yes && !process.stdin.isTTY) {
          throw new UsageError(
            `contract sign: no terminal to confirm on; read \`cleanroom contract review ${path}\`, then pass --yes`,
          );
        }
        const report = await reviewContractWithDuckDb(doc);
        // The review goes to stderr: stdout carries the approval when there is no --out.
        if (!f.yes) process.stderr.write(`${renderReview(report)}\n`);
        const refused = report.queries.find((q) => q.status === "refused");
        // The enclave would not load it: an approval of it could never be used.
        if (refused) throw new QueryCheckError(refused.id, refused.refusal ?? "refused");
        const what = `contract ${report.contract} (digest ${report.digest}) as ${party.id}`;
        if (!f.yes && !(await confirm(`Sign ${what}? [y/N] `))) {
          say("not signed");
          return EXIT_REFUSED;
        }
        if (f.yes) {
          say(`signing ${what}: ${report.queries.length} queries, ${report.warnings.length} warnings`);
        }
        const approval = await approveContract(doc, keys);
        if (f.out) await writeFile(f.out, `${approval}\n`, { flag: "wx" });
        if (f.json)
          printJson({ contract: report.contract, digest: report.digest, party: party.id, approval });
        else if (f.out) say(`approval written to ${f.out}`);
        else process.stdout.write(`${approval}\n`);
        return EXIT_OK;
      }, f.json),
  );

  const submit = contract
    .command("submit")
    .description("submit FILE with every party's approval, then attest that the enclave holds it")
    .argument("[file]", "the contract (default: the profile's)")
    .requiredOption("--approval <file>", "an approval JWS, or a JSON list of them (repeatable)", collect, []);
  addJsonOption(addContractOption(addPolicyOptions(addHostOptions(submit)))).action(
    (
      file: string | undefined,
      f: HostFlags & PolicyFlags & { contract?: string; approval: string[]; json?: boolean },
    ) =>
      run(async () => {
        const host = hostClient(f);
        const doc = await readContract(fileOf(file, f));
        const policy = await evidencePolicy(f);
        const state = await HostState.open(stateStore(f), host.baseUrl);
        const digestHex = await contractDigestHex(doc);
        // Already held (by an earlier submit of any party): nothing to send, and that is no error.
        const held = await checkAttestation(host, { policy, contractDigest: digestHex });
        if (held.keys) {
          await state.saveAttestation({
            policy: await policyFingerprint(policy),
            contractDigest: digestHex,
            keys: held.keys,
            result: held.result,
            verifiedAt: new Date().toISOString(),
          });
          if (f.json) printJson({ contract: doc.id, digest: digestHex, alreadyActive: true });
          else say(`contract ${doc.id} (digest ${digestHex}) is already active in the attested enclave`);
          return 0;
        }
        const r = await submitContract(host, doc, await readApprovals(f.approval), policy, state);
        if (f.json) printJson({ contract: doc.id, digest: r.digest, alreadyActive: false, head: r.head });
        else say(`contract ${doc.id} (digest ${r.digest}) accepted; audit head ${r.head.seq} ${r.head.hash}`);
        return 0;
      }, f.json),
  );
}
