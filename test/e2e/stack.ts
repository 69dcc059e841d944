/**
 * The product in one test process but over real sockets: partner → (recording proxy) → host
 * (fastify) → (recording proxy) → enclave (simulated platform). The proxies keep every byte the
 * host receives and sends, so tests can search them, the host's store and its logs.
 */
import { mkdtempSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { listen } from "../../enclave/server.js";
import { buildHost } from "../../host/app.js";

export interface TestStack {
  url: string;
  dir: string;
  simDir: string;
  storeDir: string;
  enclave: Enclave;
  /** Every byte that crossed the host's two sockets, both directions. */
  wire: Buffer[];
  /** The host's log lines. */
  logs: string[];
  stop(): Promise<void>;
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

export async function startTestStack(): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), "cleanroom-e2e-"));
  const simDir = join(dir, "sim");
  const storeDir = join(dir, "store");
  const wire: Buffer[] = [];
  const logs: string[] = [];
  const enclave = await Enclave.start({ provider: await createSimProvider({ dir: simDir }) });
  const served = await listen(enclave, { path: join(dir, "enclave.sock") });
  const enclaveProxy = await proxy(
    { path: join(dir, "relay.sock") },
    { path: join(dir, "enclave.sock") },
    wire,
  );
  const stream = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const app = await buildHost({
    enclave: { socketPath: join(dir, "relay.sock") },
    storeDir,
    logger: { level: "info", stream },
    rateLimit: false,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const hostPort = (app.server.address() as { port: number }).port;
  const front = await proxy({ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: hostPort }, wire);
  const url = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
  return {
    url,
    dir,
    simDir,
    storeDir,
    enclave,
    wire,
    logs,
    async stop() {
      await app.close();
      await new Promise((r) => front.close(r));
      await new Promise((r) => enclaveProxy.close(r));
      await served.close();
      await enclave.close();
    },
  };
}
