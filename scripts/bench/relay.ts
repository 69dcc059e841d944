/**
 * Measurements 4 and 5, on the product as deployed (scripts/stack.ts: an enclave process on a
 * unix socket and a host process relaying to it). The same grant + streaming ingest of the same
 * files, once through the host (partner SDK: upload to the host's store, then POST /grants,
 * which relays the grant and streams the stored blob to the enclave) and once straight to the
 * enclave's socket (the host's own HTTP client in a process of its own, scripts/bench/direct-send.ts,
 * no host process in between). Each path gets a fresh stack, two rounds each. The direct run also reads the enclave process's peak RSS (VmHWM).
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { grant, uploadFile } from "../../client/node/index.js";
import { sealShare } from "../../client/sdk/seal-share.js";
import { EnclaveClient, expectOk } from "../../host/enclave-client.js";
import { type PartyId, startCollaboration } from "../demo/flow.js";
import { startStack } from "../stack.js";
import type { DataFile } from "./data.js";
import { procMemory } from "./memory.js";
import { encryptFile, fileKeyOf } from "./partner.js";
import { addThreadCpu, seconds, threadCpuSeconds } from "./timing.js";

const OWNER: Record<DataFile["which"], PartyId> = { purchases: "advertiser", exposures: "publisher" };

export interface RelayResult {
  ciphertextMB: number;
  /** Through the host: partner encrypt + upload into the host's store (no direct counterpart). */
  relayEncryptUploadS: number;
  relayGrantIngestS: number;
  directGrantIngestS: number;
  relayMBps: number;
  directMBps: number;
  /** Relay throughput / direct throughput (grant + ingest). */
  ratio: number;
  /**
   * CPU seconds of the deployed enclave process's main thread while it received and loaded both
   * ciphertexts over its socket (the direct run counted): the serial work of a load as deployed,
   * HTTP reception included. Null where a thread's CPU time cannot be read.
   */
  enclaveMainCpuS: number | null;
  memory: {
    rowsLoaded: number;
    enclaveBaseMB: number;
    enclavePeakMB: number;
    /** (peak − base) per million rows loaded. */
    peakMBPerMillionRows: number;
  };
}

/** Streams one ciphertext to the enclave from a process of its own; the seconds it measured. */
function sendDirect(socket: string, dataset: string, digest: string, file: string): number {
  const script = fileURLToPath(new URL("./direct-send.js", import.meta.url));
  const run = spawnSync(process.execPath, [script, socket, dataset, digest, file], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`bench: direct sender failed (${run.status})`);
  return (JSON.parse(run.stdout) as { seconds: number }).seconds;
}

/** The enclave child of a stack, found by its unique socket path on its command line. */
function enclavePid(socket: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.endsWith("enclave/main.js")) && argv.includes(socket)) return Number(entry);
    } catch {
      // Gone, or not ours to read.
    }
  }
  throw new Error("bench: enclave process not found");
}

async function throughHost(files: DataFile[], dir: string, memoryLimit: string) {
  const stack = await startStack({ dir: mkdtempSync(join(dir, "relay-")), memoryLimit });
  try {
    const c = await startCollaboration(stack.url, stack.simDir);
    let uploadS = 0;
    let grantS = 0;
    let bytes = 0;
    for (const f of files) {
      const client = c.clients[OWNER[f.which]];
      let up: Awaited<ReturnType<typeof uploadFile>> | undefined;
      uploadS += await seconds(async () => {
        up = await uploadFile(client, f.path);
      });
      bytes += up!.size;
      grantS += await seconds(() => grant(client, { dataset: f.dataset, ciphertextDigest: up!.digest }));
    }
    return { uploadS, grantS, bytes };
  } finally {
    await stack.stop();
  }
}

async function direct(files: DataFile[], dir: string, memoryLimit: string) {
  const stack = await startStack({ dir: mkdtempSync(join(dir, "direct-")), memoryLimit });
  const enclave = new EnclaveClient({ address: { socketPath: stack.enclaveSocket } });
  try {
    const c = await startCollaboration(stack.url, stack.simDir);
    const pid = enclavePid(stack.enclaveSocket);
    const base = procMemory(pid);
    let grantS = 0;
    let bytes = 0;
    let rows = 0;
    let mainCpuS: number | null = 0;
    for (const f of files) {
      const client = c.clients[OWNER[f.which]];
      const attested = await client.attestation();
      // As the SDK uploads: encrypted to the owner itself, the file key in the grant.
      const ct = await encryptFile(f.path, client.keys.ageRecipient, join(dir, `${f.which}-direct.age`));
      const fileKey = await fileKeyOf(ct.path, client.keys.ageIdentity);
      bytes += statSync(ct.path).size;
      grantS += await seconds(async () => {
        const sealShareB64 = await sealShare(client.keys.ageIdentity, client.contractDigest);
        const body = { dataset: f.dataset, ciphertextDigest: ct.digest, fileKey, sealShare: sealShareB64 };
        const req = await client.seal("grant", body, attested);
        expectOk(await enclave.postJson("/v1/requests", { jwe: req.jwe }));
      });
      const main0 = threadCpuSeconds(pid);
      grantS += sendDirect(stack.enclaveSocket, f.dataset, ct.digest, ct.path);
      mainCpuS = addThreadCpu(mainCpuS, main0, threadCpuSeconds(pid));
      rows += f.rows;
      rmSync(ct.path, { force: true });
    }
    const peak = procMemory(pid);
    return { grantS, bytes, rows, mainCpuS, baseMB: base.rssMB, peakMB: peak.hwmMB };
  } finally {
    enclave.close();
    await stack.stop();
  }
}

/** Two rounds, alternating which path goes first; the faster of each path's two runs counts. */
export async function benchRelay(
  files: DataFile[],
  workDir: string,
  memoryLimit: string,
): Promise<RelayResult> {
  const viaHost1 = await throughHost(files, workDir, memoryLimit);
  const straight1 = await direct(files, workDir, memoryLimit);
  const straight2 = await direct(files, workDir, memoryLimit);
  const viaHost2 = await throughHost(files, workDir, memoryLimit);
  const viaHost = viaHost1.grantS <= viaHost2.grantS ? viaHost1 : viaHost2;
  const straight = straight1.grantS <= straight2.grantS ? straight1 : straight2;
  const relayMBps = viaHost.bytes / 1e6 / viaHost.grantS;
  const directMBps = straight.bytes / 1e6 / straight.grantS;
  return {
    ciphertextMB: straight.bytes / 1e6,
    relayEncryptUploadS: Math.min(viaHost1.uploadS, viaHost2.uploadS),
    relayGrantIngestS: viaHost.grantS,
    directGrantIngestS: straight.grantS,
    relayMBps,
    directMBps,
    ratio: relayMBps / directMBps,
    enclaveMainCpuS: straight.mainCpuS,
    memory: {
      rowsLoaded: straight.rows,
      enclaveBaseMB: straight.baseMB,
      enclavePeakMB: straight.peakMB,
      peakMBPerMillionRows: ((straight.peakMB - straight.baseMB) / straight.rows) * 1e6,
    },
  };
}
