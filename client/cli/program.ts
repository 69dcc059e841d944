/**
 * The `cleanroom` program: every command registered on one commander instance. Exit codes:
 * 0 ok, 1 refused (verification, policy or server refusal), 2 usage or I/O. Failures print
 * `error CODE: message`, never a stack trace.
 */
import { Command, CommanderError } from "commander";
import { registerAttestCommand } from "./commands/attest.js";
import { registerAuditCommand } from "./commands/audit.js";
import { registerContractCommand } from "./commands/contract.js";
import { registerGrantCommand } from "./commands/grant.js";
import { registerHashIdsCommand } from "./commands/hash-ids.js";
import { registerKeygenCommand } from "./commands/keygen.js";
import { registerMeasureCommand } from "./commands/measure.js";
import { registerQueryCommand } from "./commands/query.js";
import { registerSimCommand } from "./commands/sim.js";
import { registerUploadCommand } from "./commands/upload.js";
import { registerVerifyCommand } from "./commands/verify.js";
import { EXIT_OK, EXIT_USAGE, reportError } from "./output.js";

export function buildProgram(): Command {
  const program = new Command("cleanroom")
    .description("partner CLI of the attested data clean room")
    // Commander's own messages are replaced by ours (`error ERR_USAGE: ...`, exit 2).
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .showHelpAfterError(false);
  registerKeygenCommand(program);
  registerContractCommand(program);
  registerAttestCommand(program);
  registerVerifyCommand(program);
  registerUploadCommand(program);
  registerGrantCommand(program);
  registerQueryCommand(program);
  registerAuditCommand(program);
  registerHashIdsCommand(program);
  registerSimCommand(program);
  registerMeasureCommand(program);
  return program;
}

/** Runs one command line (without the node and script arguments); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT_OK;
      process.stderr.write(`error ERR_USAGE: ${e.message.replace(/^error: /, "")}\n`);
      return EXIT_USAGE;
    }
    return reportError(e);
  }
}
