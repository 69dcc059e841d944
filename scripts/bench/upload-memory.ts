/**
 * The client's memory during an upload does not grow with the file: a file of `mib` MiB is
 * uploaded by a child process (upload-client.ts) to a host in this process, and the child's peak
 * resident memory is reported with the time taken.
 *   node dist/scripts/bench/upload-memory.js [--mib 2048] [--dir DIR]
 * (also `npm run bench -- --upload-mib 2048`). The file is written in a temporary folder and
 * removed afterwards, as is the host's store.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { generatePartyKeys } from "../../client/sdk/keys.js";
import { buildHost } from "../../host/app.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

export interface UploadMemory {
  fileMB: number;
  /** The uploading process's peak resident memory. */
  maxRssMB: number;
  seconds: number;
  /** Plaintext MB per second, both passes (hash, send) included. */
  MBps: number;
}

/** `mib` MiB of CSV-shaped lines (a hashed id and an amount). */
export async function writeUploadFile(path: string, mib: number): Promise<void> {
  const line = "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b,12.50\n";
  const block = Buffer.from(line.repeat(Math.floor(MiB / line.length)));
  const out = createWriteStream(path);
  let left = mib * MiB;
  while (left > 0) {
    const piece = left >= block.length ? block : block.subarray(0, left);
    if (!out.write(piece)) await once(out, "drain");
    left -= piece.length;
  }
  out.end();
  await finished(out);
}

/** Runs upload-client.js (compiled; `script` when not beside this file); resolves with its last line. */
export async function runUploadClient(
  args: { url: string; file: string; stateDir: string; keyFile: string },
  script = join(HERE, "upload-client.js"),
): Promise<{ digest: string; size: number; resumedFrom: number; maxRssMB: number }> {
  const child = spawn(process.execPath, [script, args.url, args.file, args.stateDir, args.keyFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`upload-client exited with ${code}: ${err.trim()}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

export async function benchUploadMemory(mib: number, dir?: string): Promise<UploadMemory> {
  const work = await mkdtemp(join(dir ?? tmpdir(), "cleanroom-upload-bench-"));
  // No enclave: uploads only need the host's store. Port 9 (discard) is never contacted.
  const host = await buildHost({
    enclave: { host: "127.0.0.1", port: 9 },
    storeDir: join(work, "store"),
    logger: false,
    rateLimit: false,
  });
  try {
    await host.listen({ host: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}`;
    const file = join(work, "data.csv");
    await writeUploadFile(file, mib);
    const keyFile = join(work, "key.json");
    await writeFile(keyFile, JSON.stringify(await generatePartyKeys()), { mode: 0o600 });
    const t0 = performance.now();
    const r = await runUploadClient({ url, file, stateDir: join(work, "state"), keyFile });
    const seconds = (performance.now() - t0) / 1000;
    const stored = (await host.inject({ method: "GET", url: `/api/v1/blobs/${r.digest}/upload` })).json();
    if (!stored.complete || stored.offset !== r.size)
      throw new Error("the host does not hold the whole blob");
    const fileMB = (mib * MiB) / 1e6;
    return { fileMB, maxRssMB: Math.round(r.maxRssMB), seconds, MBps: fileMB / seconds };
  } finally {
    await host.close();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const mib = Number(arg("--mib") ?? 2048);
  benchUploadMemory(mib, arg("--dir")).then(
    (r) => process.stdout.write(`${JSON.stringify({ uploadMemory: r })}\n`),
    (e: unknown) => {
      process.stderr.write(`upload-memory: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
