/**
 * The product in one test process but over real sockets: partner → (recording proxy) → host
 * (fastify) → (recording proxy) → enclave (simulated platform). The proxies keep every byte the
 * host receives and sends, so tests can search them, the host's store and its logs.
 */
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { listen } from "../../enclave/server.js";
import { buildHost, type HostLimits } from "../../host/app.js";

export interface TestStack {
  url: string;
  dir: string;
  simDir: string;
  storeDir: string;
  enclave: Enclave;
  app: FastifyInstance;
  /** Every byte that crossed the host's two sockets, both directions (when recording). */
  wire: Buffer[];
  /** The host's log lines (when kept). */
  logs: string[];
  stop(): Promise<void>;
}

export interface TestStackOptions {
  /** Put byte-recording proxies on both of the host's sockets (default true). */
  record?: boolean;
  /** Keep the host's log lines in `logs` (default: as `record`). */
  keepLogs?: boolean;
  limits?: HostLimits;
  /** The enclave's release quantum (default 0: answers leave at once; enclave/main.ts defaults to 1000). */
  releaseQuantumMs?: number;
}

type Target = { port: number; host: string } | { path: string };

/** A byte-recording TCP/unix proxy. */
function proxy(listenOn: Target, to: Target, wire: Buffer[]): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection(to as never);
    client.on("data", (b: Buffer) => wire.push(Buffer.from(b)));
    upstream.on("data", (b: Buffer) => wire.push(Buffer.from(b)));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
  });
  return new Promise((resolve) => server.listen(listenOn as never, () => resolve(server)));
}

/** Without recording, memory and timing figures are the product's own (load tests). */
export async function startTestStack(o: TestStackOptions = {}): Promise<TestStack> {
  const record = o.record ?? true;
  const keepLogs = o.keepLogs ?? record;
  const dir = mkdtempSync(join(tmpdir(), "cleanroom-e2e-"));
  const simDir = join(dir, "sim");
  const storeDir = join(dir, "store");
  const wire: Buffer[] = [];
  const logs: string[] = [];
  const enclave = await Enclave.start({
    provider: await createSimProvider({ dir: simDir }),
    releaseQuantumMs: o.releaseQuantumMs ?? 0,
  });
  const served = await listen(enclave, { path: join(dir, "enclave.sock") });
  const proxies: Server[] = [];
  let enclaveSocket = join(dir, "enclave.sock");
  if (record) {
    proxies.push(await proxy({ path: join(dir, "relay.sock") }, { path: enclaveSocket }, wire));
    enclaveSocket = join(dir, "relay.sock");
  }
  const app = await buildHost({
    enclave: { socketPath: enclaveSocket },
    storeDir,
    logger: { level: "info", stream: { write: (line: string) => void (keepLogs && logs.push(line)) } },
    rateLimit: false,
    ...(o.limits ? { limits: o.limits } : {}),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  let port = (app.server.address() as { port: number }).port;
  if (record) {
    const front = await proxy({ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port }, wire);
    proxies.push(front);
    port = (front.address() as { port: number }).port;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    simDir,
    storeDir,
    enclave,
    app,
    wire,
    logs,
    async stop() {
      app.server.closeAllConnections();
      await app.close();
      for (const p of proxies) await new Promise((r) => p.close(r));
      await served.close();
      await enclave.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
