/** `cleanroom keygen --out FILE`: a new party key file (mode 0600); prints the public keys. */
import type { Command } from "commander";
import { writeNewKeyFile } from "../../node/key-file.js";
import { publicKeysOf } from "../../sdk/keys.js";
import { run } from "../options.js";

export function registerKeygenCommand(program: Command): void {
  program
    .command("keygen")
    .description("create a party key file: ES256 signing key + age X25519 identity")
    .requiredOption("--out <file>", "where to write the key file (must not exist)")
    .action((f: { out: string }) =>
      run(async () => {
        const file = await writeNewKeyFile(f.out);
        process.stdout.write(`${JSON.stringify(await publicKeysOf(file), null, 2)}\n`);
        return 0;
      }),
    );
}
