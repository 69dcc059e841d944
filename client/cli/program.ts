/**
 * The `cleanroom` program: every command registered on one commander instance. Exit codes:
 * 0 ok, 1 refused (verification, policy or server refusal), 2 usage or I/O. Failures print
 * `error CODE: message`, never a stack trace. Before any command runs, the options it was not
 * given on the command line or in the environment are filled from the profile (config.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { UsageError } from "../../attestation/errors.js";
import { registerAttestCommand } from "./commands/attest.js";
import { registerAuditCommand } from "./commands/audit.js";
import { registerCheckCommand } from "./commands/check.js";
import { registerConsoleCommand } from "./commands/console.js";
import { registerContractCommand } from "./commands/contract.js";
import { registerGrantCommand } from "./commands/grant.js";
import { registerHashIdsCommand } from "./commands/hash-ids.js";
import { registerInitCommand } from "./commands/init.js";
import { registerKeygenCommand } from "./commands/keygen.js";
import { registerMeasureCommand } from "./commands/measure.js";
import { registerQueryCommand } from "./commands/query.js";
import { registerResultsCommand } from "./commands/results.js";
import { registerSimCommand } from "./commands/sim.js";
import { registerStatusCommand } from "./commands/status.js";
import { registerUploadCommand } from "./commands/upload.js";
import { registerVerifyCommand } from "./commands/verify.js";
import { applyConfig, CONFIG_FILE } from "./config.js";
import { EXIT_OK, EXIT_USAGE, reportError } from "./output.js";

const PACKAGE_NAME = "attested-cleanroom";

/** The version in the package.json of this installation (found upward from this module). */
export function cliVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

export function buildProgram(): Command {
  const program = new Command("cleanroom")
    .description("partner CLI of the attested data clean room")
    .version(cliVersion(), "-V, --version", "print the version")
    .addOption(
      new Option("--profile <name>", `use the settings of this profile of ${CONFIG_FILE}`).env(
        "CLEANROOM_PROFILE",
      ),
    )
    .addOption(
      new Option(
        "--config <file>",
        `read settings from this file instead of the nearest ${CONFIG_FILE} above the current folder`,
      ).env("CLEANROOM_CONFIG"),
    )
    .addHelpText(
      "after",
      `\nSettings (URL, evidence policy, contract, key) come from the flags, then CLEANROOM_* variables,\nthen ${CONFIG_FILE} (cleanroom init writes one). docs/PARTNER-GUIDE.md has the details.`,
    )
    // Commander's own messages are replaced by ours (`error ERR_USAGE: ...`, exit 2).
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .showHelpAfterError(false);
  // `init` writes the file (its --profile names the profile to write), so it reads none.
  program.hook("preAction", (_program, action) => {
    if (action.name() !== "init" || action.parent !== program) applyConfig(action);
  });
  registerInitCommand(program);
  registerKeygenCommand(program);
  registerContractCommand(program);
  registerAttestCommand(program);
  registerStatusCommand(program);
  registerCheckCommand(program);
  registerUploadCommand(program);
  registerGrantCommand(program);
  registerQueryCommand(program);
  registerResultsCommand(program);
  registerAuditCommand(program);
  registerConsoleCommand(program);
  registerHashIdsCommand(program);
  registerVerifyCommand(program);
  registerSimCommand(program);
  registerMeasureCommand(program);
  return program;
}

/** Runs one command line (without the node and script arguments); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  const program = buildProgram();
  // No command at all: the help is the answer, not a usage error.
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation());
    return EXIT_OK;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return EXIT_OK;
    const json = argv.includes("--json") ? process.stdout : undefined;
    if (e instanceof CommanderError) {
      reportError(new UsageError(usageMessage(e)), process.stderr, json);
      return EXIT_USAGE;
    }
    return reportError(e, process.stderr, json);
  }
}

/** Commander's message, or for a command group called without a subcommand, what it takes. */
function usageMessage(e: CommanderError): string {
  if (e.code === "commander.help" || e.message === "(outputHelp)") {
    return "a subcommand is missing; see cleanroom --help";
  }
  return e.message.replace(/^error: /, "");
}
