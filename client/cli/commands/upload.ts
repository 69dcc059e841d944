/**
 * `cleanroom upload FILE`: check FILE against its dataset (skip with --no-check), encrypt it to
 * this party's own recipient and store the ciphertext at the host. Prints the ciphertext digest
 * (what `grant` takes; `grant` also defaults to the last upload of the dataset).
 */
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { checkFile } from "../../node/check-file.js";
import { type UploadProgress, uploadFile } from "../../node/upload.js";
import { rememberUpload } from "../../sdk/uploads.js";
import { addClientOptions, type ClientFlags, datasetOf, openClient, run } from "../options.js";
import { printJson, say } from "../output.js";
import { CheckFailedError, printCheck } from "./check.js";

/** One bar per phase, with throughput; silent when stderr is not a terminal. */
function progressBar(): { update: (p: UploadProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  let bar: SingleBar | undefined;
  let phase: string | undefined;
  let started = 0;
  const stop = () => bar?.stop();
  return {
    stop,
    update(p) {
      if (p.phase !== phase) {
        stop();
        phase = p.phase;
        started = Date.now();
        bar = new SingleBar({
          format: `${p.phase.padEnd(7)} [{bar}] {percentage}% | {value}/{total} bytes | {rate} MB/s`,
          stream: process.stderr,
        });
        bar.start(p.total, 0, { rate: "0.0" });
      }
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      bar!.update(p.bytes, { rate: (p.bytes / seconds / 1e6).toFixed(1) });
    },
  };
}

interface UploadFlags extends ClientFlags {
  dataset?: string;
  check: boolean;
  keepCiphertext?: string;
}

export function registerUploadCommand(program: Command): void {
  const cmd = program
    .command("upload")
    .description("check FILE against its dataset, age-encrypt it to this party's own recipient and upload it")
    .argument("<file>")
    .option("--dataset <id>", "the dataset FILE is for (default: the only one this party owns)")
    .option("--no-check", "upload without checking FILE against the dataset first")
    .option("--keep-ciphertext <file>", "also keep the age file here");
  addClientOptions(cmd).action((file: string, f: UploadFlags) =>
    run(async () => {
      const client = await openClient(f);
      const dataset = datasetOf(client.contract, client.partyId, f.dataset);
      if (dataset.owner !== client.partyId) {
        throw new UsageError(
          `dataset ${dataset.id} is owned by ${dataset.owner}; party ${client.partyId} uploads its own datasets only`,
        );
      }
      const report = f.check ? await checkFile(file, dataset) : undefined;
      if (report && !report.ok) {
        printCheck(file, report);
        throw new CheckFailedError(file, report);
      }
      if (report && !f.json) printCheck(file, report);
      const bar = progressBar();
      try {
        const r = await uploadFile(client, file, {
          onProgress: bar.update,
          ...(f.keepCiphertext ? { ciphertextPath: f.keepCiphertext } : {}),
        });
        bar.stop();
        await rememberUpload(client.state, {
          dataset: dataset.id,
          digest: r.digest,
          file,
          at: new Date().toISOString(),
        });
        if (f.json) {
          printJson({
            file,
            dataset: dataset.id,
            digest: r.digest,
            size: r.size,
            alreadyStored: r.skipped,
            ...(report ? { check: report } : {}),
          });
        } else {
          process.stdout.write(`${r.digest}\n`);
          say(
            `${r.skipped ? "the host already stores this ciphertext" : `uploaded ${r.size} bytes`}; next: cleanroom grant --dataset ${dataset.id}`,
          );
        }
      } finally {
        bar.stop();
      }
      return 0;
    }, f.json),
  );
}
