/**
 * `node dist/scripts/demo/prepare.js DIR [--identities N]`: everything the CLI walk-through in
 * the README needs, without running anything: both parties' key files, the demo contract
 * naming their public keys, and each party's plaintext CSV.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { loadPartyKeys, writeNewKeyFile } from "../../client/node/index.js";
import { DATASETS, PARTIES } from "./flow.js";
import { useCaseContract, useCaseRows } from "./usecases.js";

async function main(): Promise<void> {
  const cmd = new Command("prepare")
    .argument("<dir>")
    .option(
      "--identities <n>",
      "publisher users",
      (t) => {
        const n = Number(t);
        if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a positive integer");
        return n;
      },
      100_000,
    )
    .parse(process.argv);
  const dir = cmd.args[0]!;
  const { identities } = cmd.opts<{ identities: number }>();
  mkdirSync(dir, { recursive: true });
  const parties = [];
  for (const id of PARTIES) {
    const path = join(dir, `${id}.key.json`);
    const keys = await loadPartyKeys(await writeNewKeyFile(path));
    parties.push({ id, name: id, signingKey: keys.signingKey, ageRecipient: keys.ageRecipient });
  }
  writeFileSync(join(dir, "contract.json"), `${JSON.stringify(useCaseContract(parties), null, 2)}\n`);
  for (const { dataset, rows } of DATASETS) {
    writeFileSync(join(dir, `${dataset.id}.csv`), [...useCaseRows(rows, { identities })].join(""));
  }
  process.stdout.write(
    `wrote ${PARTIES.map((p) => `${p}.key.json`).join(", ")}, contract.json and the CSVs to ${dir}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`prepare failed: ${(e as Error).message}\n`);
  process.exit(1);
});
