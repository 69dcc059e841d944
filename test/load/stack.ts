/**
 * One host and one enclave on loopback in this process, without recording proxies (so memory
 * figures are the product's own): the enclave (simulated platform) on a unix socket, the host
 * on 127.0.0.1. Also a two-party collaboration with both use-case datasets loaded.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { grant, uploadFile } from "../../client/node/index.js";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { listen } from "../../enclave/server.js";
import { buildHost, type HostLimits } from "../../host/app.js";
import { type Collaboration, DATASETS, startCollaboration } from "../../scripts/demo/flow.js";
import { useCaseRows } from "../../scripts/demo/usecases.js";

export interface LoopbackStack {
  url: string;
  dir: string;
  simDir: string;
  storeDir: string;
  enclave: Enclave;
  app: FastifyInstance;
  logs: string[];
  stop(): Promise<void>;
}

/** `keepLogs` keeps the host's log lines in `logs` (for tests that search them). */
export async function startLoopback(limits: HostLimits = {}, keepLogs = false): Promise<LoopbackStack> {
  const dir = mkdtempSync(join(tmpdir(), "cleanroom-hardening-"));
  const simDir = join(dir, "sim");
  const storeDir = join(dir, "store");
  const enclave = await Enclave.start({ provider: await createSimProvider({ dir: simDir }) });
  const served = await listen(enclave, { path: join(dir, "enclave.sock") });
  const logs: string[] = [];
  const app = await buildHost({
    enclave: { socketPath: join(dir, "enclave.sock") },
    storeDir,
    logger: { level: "info", stream: { write: (line: string) => void (keepLogs && logs.push(line)) } },
    rateLimit: false,
    limits,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return {
    url,
    dir,
    simDir,
    storeDir,
    enclave,
    app,
    logs,
    async stop() {
      app.server.closeAllConnections();
      await app.close();
      await served.close();
      enclave.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Both parties approve, submit, upload and grant their use-case data. */
export async function loadedCollaboration(
  url: string,
  simDir: string,
  dir: string,
  identities = 300,
): Promise<Collaboration> {
  const c = await startCollaboration(url, simDir);
  for (const { owner, dataset, rows } of DATASETS) {
    const file = join(dir, `${dataset.id}.csv`);
    writeFileSync(file, [...useCaseRows(rows, { identities })].join(""));
    const up = await uploadFile(c.clients[owner], file);
    await grant(c.clients[owner], { dataset: dataset.id, ciphertextDigest: up.digest });
  }
  return c;
}
