/**
 * `cleanroom console`: the partner console in the browser. This process serves the page on
 * 127.0.0.1 and does everything the page asks with the partner SDK (attest, review and sign,
 * check, encrypt and upload, grant, run, decrypt, verify the audit log); the keys stay here. The
 * address it prints carries a per-launch token. Runs until Ctrl-C.
 */
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { openBrowser, startConsole } from "../../console/index.js";
import { addClientOptions, type ClientFlags, contractPath, openClient, run } from "../options.js";
import { printJson, say } from "../output.js";

interface ConsoleFlags extends ClientFlags {
  port: string;
  approvals?: string;
  dataDir?: string;
  open?: boolean;
}

export function registerConsoleCommand(program: Command): void {
  const cmd = program
    .command("console")
    .description("open the partner console in the browser, served by this process on 127.0.0.1")
    .option("--port <n>", "local port (default: a free one)", "0")
    .option(
      "--approvals <dir>",
      "folder the parties' contract approvals are exchanged in (default: the contract's folder)",
    )
    .option("--data-dir <dir>", "folder the Data page offers files from (default: the current folder)")
    .option("--open", "also open the address in the system's browser");
  addClientOptions(cmd).action((f: ConsoleFlags) =>
    run(async () => {
      const port = Number(f.port);
      if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
        throw new UsageError("--port must be a port number from 0 (any free port) to 65535");
      }
      const contractFile = resolve(contractPath(f));
      const client = await openClient(f);
      const server = await startConsole({
        client,
        contractFile,
        approvalsDir: resolve(f.approvals ?? dirname(contractFile)),
        dataDir: resolve(f.dataDir ?? "."),
        version: program.version() ?? "unknown",
        port,
      });
      if (f.json) printJson({ url: server.url, party: client.partyId, contract: client.contract.id });
      else {
        say(`partner console for ${client.partyId} (contract ${client.contract.id}) at`);
        process.stdout.write(`${server.url}\n`);
        say("open it in a browser on this machine; the address holds this session's token. Ctrl-C stops it.");
      }
      if (f.open) openBrowser(server.url, (why) => say(`${why}: open the address above yourself`));
      await new Promise<void>((resolveStop) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void server.close().then(resolveStop);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      return 0;
    }, f.json),
  );
}
