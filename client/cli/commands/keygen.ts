/** `cleanroom keygen --out FILE`: a new party key file (mode 0600); prints the public keys. */
import type { Command } from "commander";
import { writeNewKeyFile } from "../../node/key-file.js";
import { publicKeysOf } from "../../sdk/keys.js";
import { addJsonOption, run } from "../options.js";
import { say } from "../output.js";

export function registerKeygenCommand(program: Command): void {
  const cmd = program
    .command("keygen")
    .description("create a party key file: ES256 signing key + age X25519 identity")
    .requiredOption("--out <file>", "where to write the key file (must not exist)");
  // The public keys are JSON either way: they are what the other parties put in the contract.
  addJsonOption(cmd).action((f: { out: string; json?: boolean }) =>
    run(async () => {
      const file = await writeNewKeyFile(f.out);
      process.stdout.write(`${JSON.stringify(await publicKeysOf(file), null, 2)}\n`);
      if (!f.json) say(`wrote ${f.out} (mode 0600); share the public keys above, never the file`);
      return 0;
    }, f.json),
  );
}
