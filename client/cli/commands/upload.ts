/** `cleanroom upload FILE`: encrypt to this party's own age recipient and store at the host. */
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { type UploadProgress, uploadFile } from "../../node/upload.js";
import { addClientOptions, type ClientFlags, openClient, run } from "../options.js";

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

export function registerUploadCommand(program: Command): void {
  const cmd = program
    .command("upload")
    .description("age-encrypt FILE to this party's own recipient and upload the ciphertext")
    .argument("<file>")
    .option("--keep-ciphertext <file>", "also keep the age file here");
  addClientOptions(cmd).action((file: string, f: ClientFlags & { keepCiphertext?: string }) =>
    run(async () => {
      const client = await openClient(f);
      const bar = progressBar();
      try {
        const r = await uploadFile(client, file, {
          onProgress: bar.update,
          ...(f.keepCiphertext ? { ciphertextPath: f.keepCiphertext } : {}),
        });
        bar.stop();
        process.stdout.write(`${r.digest}\n`);
        if (r.skipped) process.stderr.write("the host already stores this ciphertext\n");
      } finally {
        bar.stop();
      }
      return 0;
    }),
  );
}
