/**
 * `npm run demo`: starts its own stack (simulated enclave + untrusted host), then an advertiser
 * and a publisher with generated data run the whole partner flow and print the answers.
 * With --console, each party gets its partner console instead (client/console) and the flow is
 * done in the browser: keys, the contract and each party's CSV are prepared, nothing more.
 *   node dist/scripts/demo/run.js [--identities N] [--seed N] [--console]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { openBrowser, startConsole } from "../../client/console/index.js";
import { FileStateStore } from "../../client/node/file-store.js";
import {
  CleanroomClient,
  decryptAgeNode,
  generatePartyKeys,
  HostClient,
  loadPartyKeys,
} from "../../client/node/index.js";
import { type Stack, startStack } from "../stack.js";
import { DATASETS, type FlowResult, PARTIES, runPartnerFlow, simPolicy } from "./flow.js";
import { useCaseContract, useCaseRows } from "./usecases.js";

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a positive integer");
  return n;
}

function table(columns: string[], rows: unknown[][]): string {
  const cells = [columns, ...rows.map((r) => r.map((v) => String(v ?? "")))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r.map((c, i) => c.padStart(widths[i]!)).join("  ")}`;
  return [
    line(cells[0]!),
    `  ${widths.map((w) => "─".repeat(w)).join("  ")}`,
    ...cells.slice(1).map(line),
  ].join("\n");
}

function print(r: FlowResult): void {
  for (const res of r.results) {
    process.stdout.write(
      `\n${res.run.queryId} (run by ${res.run.runner}${Object.keys(res.run.params).length ? `, ${JSON.stringify(res.run.params)}` : ""})` +
        `${res.epsilon ? `, differentially private (epsilon ${res.epsilon} charged to each recipient)` : ""}` +
        `\n${table(res.columns, res.rows)}\n`,
    );
  }
  process.stdout.write(
    `\naudit log: ${r.auditEntries} entries, every signature and link verified by both parties\n` +
      `enclave: ${r.simulated ? "simulated platform" : "hardware"}, measurement ${r.measurement.slice(0, 24)}…\n`,
  );
}

/** Each party's console on its own keys, state and data folder; runs until Ctrl-C. */
async function consoles(stack: Stack, dir: string, o: { identities: number; seed: number }): Promise<void> {
  const keys = await Promise.all(PARTIES.map(async () => loadPartyKeys(await generatePartyKeys())));
  const contract = useCaseContract(
    PARTIES.map((id, i) => ({
      id,
      name: id === "advertiser" ? "Acme Shoes (advertiser)" : "Daily News (publisher)",
      signingKey: keys[i]!.signingKey,
      ageRecipient: keys[i]!.ageRecipient,
    })),
  );
  const contractFile = join(dir, "contract.json");
  writeFileSync(contractFile, `${JSON.stringify(contract, null, 2)}\n`);
  const servers = [];
  for (const { owner, dataset, rows } of DATASETS) {
    const dataDir = join(dir, owner);
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, `${dataset.id}.csv`), [...useCaseRows(rows, o)].join(""));
    const client = await CleanroomClient.open({
      host: new HostClient(stack.url),
      store: new FileStateStore(join(dir, `state-${owner}`)),
      policy: simPolicy(stack.simDir),
      contract,
      keys: keys[PARTIES.indexOf(owner)]!,
      decrypt: decryptAgeNode,
    });
    const server = await startConsole({ client, approvalsDir: dir, dataDir, contractFile, version: "demo" });
    servers.push(server);
    process.stdout.write(`${owner} console: ${server.url}\n`);
    openBrowser(server.url, (why) => process.stdout.write(`(${why}: open the address above in a browser)\n`));
  }
  process.stdout.write(
    "\nin each: Contract → sign (then submit once both signed) → Attestation → Data → Queries → Results → Audit. Ctrl-C stops.\n",
  );
  await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
  for (const s of servers) await s.close();
}

async function main(): Promise<void> {
  const o = new Command("demo")
    .option(
      "--identities <n>",
      "publisher users (the advertiser has about 1.1× as many customers, a third of them shared)",
      positive,
      100_000,
    )
    .option("--seed <n>", "data seed", positive, 1)
    .option("--console", "open each party's partner console in the browser instead of running the flow")
    .parse(process.argv)
    .opts<{ identities: number; seed: number; console?: boolean }>();
  const dir = mkdtempSync(join(tmpdir(), "cleanroom-demo-"));
  const t0 = performance.now();
  process.stdout.write("starting the simulated enclave and the untrusted host…\n");
  const stack = await startStack({ dir });
  try {
    process.stdout.write(`host ${stack.url} ↔ enclave ${stack.enclaveSocket}\n`);
    if (o.console) return await consoles(stack, dir, o);
    const result = await runPartnerFlow({
      url: stack.url,
      simDir: stack.simDir,
      workDir: dir,
      identities: o.identities,
      seed: o.seed,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    print(result);
    process.stdout.write(`\ndone in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  process.stderr.write(`demo failed: ${err.code ?? "error"}: ${err.message ?? String(e)}\n`);
  process.exit(1);
});
