/** `cleanroom hash-ids`: normalise and SHA-256 an email or phone column of a CSV, streaming. */
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { hashIdsFile } from "../../node/hash-ids-file.js";
import { addJsonOption, run } from "../options.js";
import { printJson, say } from "../output.js";

interface HashFlags {
  column: string;
  kind: string;
  as?: string;
  defaultCountry?: string;
  gmailRule: boolean;
  json?: boolean;
}

export function registerHashIdsCommand(program: Command): void {
  const cmd = program
    .command("hash-ids")
    .description("replace a CSV column of emails or phone numbers by the SHA-256 of their normalised form")
    .argument("<in>")
    .argument("<out>")
    .requiredOption("--column <name>", "header name of the identifier column")
    .requiredOption("--kind <kind>", "email | phone")
    .option("--as <name>", "rename the hashed column, e.g. to the contract's identity column (user_id)")
    .option(
      "--default-country <code>",
      "country calling code for phone numbers written without one, e.g. 1 or 44",
    )
    .option("--no-gmail-rule", "keep dots and +tags of gmail.com/googlemail.com addresses");
  addJsonOption(cmd).action((input: string, output: string, f: HashFlags) =>
    run(async () => {
      if (f.kind !== "email" && f.kind !== "phone") throw new UsageError("--kind must be email or phone");
      await hashIdsFile(input, output, {
        column: f.column,
        kind: f.kind,
        gmailRule: f.gmailRule,
        ...(f.as !== undefined ? { as: f.as } : {}),
        ...(f.defaultCountry !== undefined ? { defaultCountryCode: f.defaultCountry } : {}),
      });
      const header = f.as ?? f.column;
      if (f.json) printJson({ input, output, column: f.column, header, kind: f.kind });
      else say(`hashed the ${f.kind} column ${f.column} of ${input} into ${output} (column ${header})`);
      return 0;
    }, f.json),
  );
}
