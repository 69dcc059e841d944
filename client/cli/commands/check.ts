/**
 * `cleanroom check FILE`: the file against its dataset's declaration in the contract, locally,
 * before anything is encrypted or sent (client/sdk/check.ts). `upload` runs the same check first.
 * Exit 0 when nothing was found, 1 when the enclave would refuse the file, 2 usage or I/O.
 */
import type { Command } from "commander";
import { CleanroomError, UsageError } from "../../../attestation/errors.js";
import type { Contract, Dataset } from "../../../protocol/contract/types.js";
import { checkFile } from "../../node/check-file.js";
import { readKeyFile } from "../../node/key-file.js";
import type { CheckReport } from "../../sdk/check.js";
import { findParty } from "../../sdk/keys.js";
import {
  addContractOption,
  addJsonOption,
  addKeyOptions,
  contractPath,
  datasetOf,
  readContract,
  run,
} from "../options.js";
import { EXIT_OK, EXIT_REFUSED, printJson, say } from "../output.js";

/** A file the local check found problems in; `report` has them, by line and column. */
export class CheckFailedError extends CleanroomError {
  static override code = "ERR_CHECK";
  readonly report: CheckReport;

  constructor(file: string, report: CheckReport) {
    const n = Object.values(report.counts).reduce((a, b) => a + (b ?? 0), 0);
    super(
      `${file} does not match dataset ${report.dataset}: ${n} problem${n === 1 ? "" : "s"} (listed above); fix the file, or pass --no-check to let the enclave judge it`,
    );
    this.report = report;
  }
}

/** The dataset to check against: --dataset, the contract's only one, or the only one the party owns. */
export async function checkedDataset(
  contract: Contract,
  f: { dataset?: string; key?: string; party?: string },
): Promise<Dataset> {
  const only = contract.datasets.length === 1 ? contract.datasets[0]!.id : undefined;
  if (f.dataset !== undefined || only !== undefined) return datasetOf(contract, "", f.dataset ?? only);
  const party = f.party ?? (f.key ? findParty(contract, await readKeyFile(f.key)).id : undefined);
  if (party === undefined) {
    throw new UsageError(
      `missing --dataset: contract ${contract.id} has datasets ${contract.datasets.map((d) => d.id).join(", ")}`,
    );
  }
  return datasetOf(contract, party, undefined);
}

/** The report for people: one line per problem listed, then the verdict. */
export function printCheck(file: string, r: CheckReport, write: (line: string) => void = say): void {
  for (const p of r.problems) {
    const where = [
      p.line !== undefined ? `line ${p.line}${p.row !== undefined ? ` (row ${p.row})` : ""}` : undefined,
      p.column !== undefined ? `column ${p.column}` : undefined,
    ].filter(Boolean);
    write(`  ✗ ${where.length ? `${where.join(", ")}: ` : ""}${p.message}`);
  }
  const total = Object.values(r.counts).reduce((a, b) => a + (b ?? 0), 0);
  if (total > r.problems.length) {
    const kinds = Object.entries(r.counts)
      .map(([code, n]) => `${n} ${code.toLowerCase().replaceAll("_", " ")}`)
      .join(", ");
    write(`  … ${total - r.problems.length} more (in all: ${kinds})`);
  }
  const without = r.rowsWithoutIdentity
    ? `; ${r.rowsWithoutIdentity} rows without an identity will be dropped at load`
    : "";
  write(
    r.ok
      ? `✓ ${file}: ${r.rows} rows match dataset ${r.dataset}${without}`
      : `✗ ${file}: the enclave would refuse it for dataset ${r.dataset} (${r.rows} rows read)`,
  );
}

interface CheckFlags {
  dataset?: string;
  contract?: string;
  key?: string;
  party?: string;
  maxProblems: string;
  json?: boolean;
}

export function registerCheckCommand(program: Command): void {
  const cmd = program
    .command("check")
    .description(
      "check FILE against its dataset in the contract (columns, types, identities) before uploading",
    )
    .argument("<file>")
    .option("--dataset <id>", "the dataset (default: the one the profile's party owns)")
    .option("--max-problems <n>", "problems listed at most (all are counted)", "10");
  addJsonOption(addKeyOptions(addContractOption(cmd))).action((file: string, f: CheckFlags) =>
    run(async () => {
      const max = Number(f.maxProblems);
      if (!Number.isSafeInteger(max) || max < 1)
        throw new UsageError("--max-problems must be a positive whole number");
      const contract = await readContract(contractPath(f));
      const dataset = await checkedDataset(contract, f);
      const report = await checkFile(file, dataset, { maxProblems: max });
      if (f.json) printJson({ file, ...report });
      else printCheck(file, report, (line) => process.stdout.write(`${line}\n`));
      return report.ok ? EXIT_OK : EXIT_REFUSED;
    }, f.json),
  );
}
