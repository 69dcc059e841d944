/**
 * The enclave process: `node dist/enclave/main.js --listen 127.0.0.1:7001|/path/sock|vsock:7000
 * --platform sim|sev-snp|nitro [--sim-dir DIR] [--memory-limit 4GB] [--threads N] [--spill] [--compress]
 * [--release-quantum-ms 1000]`.
 * Providers are imported only for the platform asked for, so a hardware image never loads the
 * simulator. What it prints is public or a bare error code: error messages and stacks can hold
 * data, so none is ever printed (in the sealed image even this goes through the init's filter,
 * scripts/image/console.ts).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { PlatformError } from "./platform/platform-error.js";
import type { EvidenceProvider } from "./platform/provider.js";
import { DEFAULT_RELEASE_QUANTUM_MS, Enclave } from "./runtime.js";
import { listen, parseListen } from "./server.js";

interface Options {
  listen: string;
  platform: "sim" | "sev-snp" | "nitro";
  simDir?: string;
  memoryLimit?: string;
  threads?: number;
  spill?: boolean;
  compress?: boolean;
  releaseQuantumMs: number;
}

/** An error's code when it has the shape of one of ours or a Node errno name; else ERR_INTERNAL. */
function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9_]{1,64}$/.test(code) ? code : "ERR_INTERNAL";
}

/**
 * Last resort: an error nothing caught ends the process with its code on stderr, never its
 * message or stack (the default handlers print both). Exit status 70 (EX_SOFTWARE).
 */
function fatal(e: unknown): void {
  process.stderr.write(`enclave: fatal (${codeOf(e)})\n`);
  process.exit(70);
}
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

async function provider(o: Options): Promise<EvidenceProvider> {
  switch (o.platform) {
    case "sim":
      return (await import("./platform/sim.js")).createSimProvider(o.simDir ? { dir: o.simDir } : {});
    case "sev-snp":
      return (await import("./platform/configfs-tsm.js")).createConfigfsTsmProvider();
    case "nitro":
      return (await import("./platform/nsm.js")).createNsmProvider();
  }
}

function threads(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new InvalidArgumentError("an integer from 1 to 1024");
  return n;
}

function quantum(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > 600_000) {
    throw new InvalidArgumentError("an integer number of milliseconds from 0 to 600000");
  }
  return n;
}

async function main(argv: string[]): Promise<void> {
  const o = new Command("cleanroom-enclave")
    .requiredOption(
      "--listen <address>",
      "host:port, /path/to/unix.sock, or vsock:PORT (any CID; a Nitro enclave's only way out)",
    )
    .addOption(
      new Option("--platform <name>", "evidence source")
        .choices(["sim", "sev-snp", "nitro"])
        .makeOptionMandatory(),
    )
    .option("--sim-dir <dir>", "simulated platform directory (cleanroom sim init)")
    .option("--memory-limit <size>", "DuckDB memory limit, e.g. 4GB")
    .option("--threads <n>", "DuckDB worker threads", threads)
    .option("--spill", "let DuckDB spill past --memory-limit into the in-memory scratch directory")
    .option("--compress", "keep tables in DuckDB's compressed in-memory storage (docs/INGEST.md)")
    .option(
      "--release-quantum-ms <ms>",
      "release a query's answer only at a whole multiple of this after its run started (docs/THREAT-MODEL.md); 0: at once",
      quantum,
      DEFAULT_RELEASE_QUANTUM_MS,
    )
    .parse(argv)
    .opts<Options>();
  const address = parseListen(o.listen);
  const enclave = await Enclave.start({
    provider: await provider(o),
    releaseQuantumMs: o.releaseQuantumMs,
    engineOptions: {
      ...(o.memoryLimit ? { memoryLimit: o.memoryLimit } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
      ...(o.spill ? { spill: true } : {}),
      ...(o.compress ? { compress: true } : {}),
    },
  });
  const served = await listen(enclave, address);
  // Public facts only: where it listens and its public keys (also in every evidence bundle).
  process.stdout.write(
    `${JSON.stringify({ listening: served.address, platform: o.platform, keys: enclave.keys.publicKeys })}\n`,
  );
  const stop = () => {
    served.close().finally(() => {
      enclave.close();
      process.exit(0);
    });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

/**
 * Why the platform could not give evidence, from the error's fixed fields (its reason and the
 * platform's own token, an errno or NSM error name): never its message.
 */
function platformWhy(e: unknown): string {
  if (!(e instanceof PlatformError)) return "";
  const detail = e.detail !== undefined && /^[A-Za-z0-9_]{1,64}$/.test(e.detail) ? `, ${e.detail}` : "";
  return `: no attestation evidence from the platform (${e.reason}${detail}); see docs/OPERATORS.md, Evidence providers`;
}

main(process.argv).catch((e: unknown) => {
  process.stderr.write(`enclave: failed to start (${codeOf(e)}${platformWhy(e)})\n`);
  process.exit(1);
});
