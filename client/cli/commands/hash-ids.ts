/** `cleanroom hash-ids`: normalise and SHA-256 an email or phone column of a CSV, streaming. */
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { hashIdsFile } from "../../node/hash-ids-file.js";
import { run } from "../options.js";

interface HashFlags {
  column: string;
  kind: string;
  defaultCountry?: string;
  gmailRule: boolean;
}

export function registerHashIdsCommand(program: Command): void {
  program
    .command("hash-ids")
    .description("replace a CSV column of emails or phone numbers by the SHA-256 of their normalised form")
    .argument("<in>")
    .argument("<out>")
    .requiredOption("--column <name>", "header name of the identifier column")
    .requiredOption("--kind <kind>", "email | phone")
    .option(
      "--default-country <code>",
      "country calling code for phone numbers written without one, e.g. 1 or 44",
    )
    .option("--no-gmail-rule", "keep dots and +tags of gmail.com/googlemail.com addresses")
    .action((input: string, output: string, f: HashFlags) =>
      run(async () => {
        if (f.kind !== "email" && f.kind !== "phone") throw new UsageError("--kind must be email or phone");
        await hashIdsFile(input, output, {
          column: f.column,
          kind: f.kind,
          gmailRule: f.gmailRule,
          ...(f.defaultCountry !== undefined ? { defaultCountryCode: f.defaultCountry } : {}),
        });
        return 0;
      }),
    );
}
