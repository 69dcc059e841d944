/** `cleanroom grant`: let the attested enclave decrypt and load one uploaded file. */
import type { Command } from "commander";
import { grant } from "../../sdk/grant.js";
import { addClientOptions, type ClientFlags, openClient, run } from "../options.js";

export function registerGrantCommand(program: Command): void {
  const cmd = program
    .command("grant")
    .description("grant the enclave the key of an uploaded file of a dataset this party owns")
    .requiredOption("--dataset <id>", "dataset id in the contract")
    .requiredOption("--digest <hex>", "SHA-256 of the uploaded age file (printed by upload)");
  addClientOptions(cmd).action((f: ClientFlags & { dataset: string; digest: string }) =>
    run(async () => {
      const client = await openClient(f);
      const r = await grant(client, { dataset: f.dataset, ciphertextDigest: f.digest.toLowerCase() });
      process.stdout.write(
        `granted ${r.dataset} ${r.ciphertextDigest}${r.rows !== undefined ? `; ${r.rows} rows loaded` : ""}; audit head ${r.head.seq}\n`,
      );
      if (r.quality) process.stdout.write(`${new TextDecoder().decode(r.quality)}\n`);
      return 0;
    }),
  );
}
