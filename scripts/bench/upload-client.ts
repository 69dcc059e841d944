/**
 * One upload in its own process, so that its peak resident memory is the client's alone:
 *   node dist/scripts/bench/upload-client.js <host url> <file> <state dir> <key file>
 * Prints `progress <bytes held>` lines while sending, then one JSON line {digest, size, resumedFrom,
 * maxRssMB}. Attestation is not part of what it measures: the upload path runs as the SDK's
 * uploadFile runs it once an attestation is cached, against a host without an enclave.
 * CLEANROOM_BENCH_THROTTLE_MS slows each piece sent, so a test can interrupt it midway.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { FileStateStore } from "../../client/node/file-store.js";
import { uploadFile } from "../../client/node/upload.js";
import type { CleanroomClient } from "../../client/sdk/client.js";
import { HostClient } from "../../client/sdk/http.js";
import { loadPartyKeys, type PartyKeyFile } from "../../client/sdk/keys.js";
import { HostState } from "../../client/sdk/state.js";

/** A fetch whose upload bodies wait `ms` before each piece. */
function throttled(ms: number): typeof fetch {
  return (input, init) => {
    if (init?.method !== "PATCH" || !(init.body instanceof ReadableStream)) return fetch(input, init);
    const reader = (init.body as ReadableStream<Uint8Array>).getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          await sleep(ms);
          const r = await reader.read();
          if (r.done) controller.close();
          else controller.enqueue(r.value);
        },
      },
      { highWaterMark: 0 },
    );
    return fetch(input, { ...init, body, duplex: "half" } as RequestInit);
  };
}

async function main(): Promise<void> {
  const [url, file, stateDir, keyFile] = process.argv.slice(2);
  if (!url || !file || !stateDir || !keyFile) {
    throw new Error("usage: upload-client.js <host url> <file> <state dir> <key file>");
  }
  const throttleMs = Number(process.env["CLEANROOM_BENCH_THROTTLE_MS"] ?? 0);
  const host = new HostClient(url, throttleMs > 0 ? { fetch: throttled(throttleMs) } : {});
  const keys = await loadPartyKeys(JSON.parse(await readFile(keyFile, "utf8")) as PartyKeyFile);
  const client = {
    attestation: async () => ({}),
    keys,
    host,
    state: await HostState.open(new FileStateStore(stateDir), host.baseUrl),
  } as unknown as CleanroomClient;
  let last = 0;
  const r = await uploadFile(client, file, {
    onProgress: (p) => {
      if (p.phase !== "upload" || p.bytes - last < 1024 * 1024) return;
      last = p.bytes;
      process.stdout.write(`progress ${p.bytes}\n`);
    },
  });
  // ru_maxrss: the peak resident set of this process, in KiB on Linux.
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ...r, maxRssMB })}\n`);
}

main().catch((e: unknown) => {
  const { code, message } = e as { code?: string; message?: string };
  process.stderr.write(`upload-client: ${code ?? "error"}: ${message}\n`);
  process.exit(1);
});
