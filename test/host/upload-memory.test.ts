/**
 * The uploading process, run from dist/ as the CLI runs it: its peak memory does not grow with
 * the file (the 2 GB figure is `npm run bench -- --upload-mib 2048`, docs/PERFORMANCE.md), and an
 * upload interrupted with Ctrl-C leaves no file behind and resumes where the host's copy ends.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePartyKeys } from "../../client/sdk/keys.js";
import { runUploadClient, writeUploadFile } from "../../scripts/bench/upload-memory.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

const CHILD = join(import.meta.dirname, "../../dist/scripts/bench/upload-client.js");

let host: TestHost;
let url: string;
let work: string;
let keyFile: string;

beforeAll(async () => {
  host = await startHost({ host: "127.0.0.1", port: 9 }, { rateLimit: false });
  await host.app.listen({ host: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${(host.app.server.address() as AddressInfo).port}`;
  work = await mkdtemp(join(tmpdir(), "upload-memory-"));
  keyFile = join(work, "key.json");
  await writeFile(keyFile, JSON.stringify(await generatePartyKeys()), { mode: 0o600 });
});
afterAll(async () => {
  await host.close();
  await rm(work, { recursive: true, force: true });
});

describe("upload memory", () => {
  it("peak memory of the uploading process does not grow with the file", async () => {
    const peaks: number[] = [];
    for (const mib of [32, 256]) {
      const file = join(work, `data-${mib}.csv`);
      await writeUploadFile(file, mib);
      const r = await runUploadClient({ url, file, stateDir: join(work, `state-${mib}`), keyFile }, CHILD);
      expect((await host.app.inject({ url: `/api/v1/blobs/${r.digest}/upload` })).json().complete).toBe(true);
      peaks.push(r.maxRssMB);
      await rm(file);
    }
    // 224 MiB more file; the process may differ by allocator noise, not by the file.
    expect(peaks[1]! - peaks[0]!).toBeLessThan(48);
    expect(Math.max(...peaks)).toBeLessThan(256);
  }, 120_000);

  it("Ctrl-C mid-upload leaves no file behind; the next run resumes the same ciphertext", async () => {
    const dir = await mkdtemp(join(work, "interrupt-"));
    const file = join(dir, "data.csv");
    await writeUploadFile(file, 24);
    const stateDir = join(dir, "state");
    const child = spawn(process.execPath, [CHILD, url, file, stateDir, keyFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CLEANROOM_BENCH_THROTTLE_MS: "20" },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const held = [...out.matchAll(/^progress (\d+)$/gm)].map((m) => Number(m[1]));
      if ((held.at(-1) ?? 0) >= 10 * 1024 * 1024 && child.exitCode === null) child.kill("SIGINT");
    });
    const [, signal] = (await once(child, "exit")) as [number | null, string | null];
    expect(signal).toBe("SIGINT");
    // Nothing but the plaintext and the state records: no ciphertext was ever written here.
    expect((await readdir(dir)).sort()).toEqual(["data.csv", "state"]);
    const r = await runUploadClient({ url, file, stateDir, keyFile }, CHILD);
    expect(r.resumedFrom).toBeGreaterThan(0);
    expect(r.resumedFrom).toBeLessThan(r.size);
    expect(sha256hex(await readFile(join(host.dir, "blobs", r.digest)))).toBe(r.digest);
  }, 120_000);
});
