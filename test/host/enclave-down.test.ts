import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EnclaveClient } from "../../host/enclave-client.js";
import { EnclaveTimeoutError, EnclaveUnavailableError } from "../../host/errors.js";
import { fakeJwe } from "./fake-enclave.js";
import { startHost, type TestHost } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A TCP server that counts connections and handles each with `onSocket`. */
async function socketServer(
  onSocket: (s: net.Socket) => void,
): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

async function host(enclave: Parameters<typeof startHost>[0], limits = {}): Promise<TestHost> {
  const h = await startHost(enclave, { limits: { enclaveRetryBaseMs: 5, ...limits } });
  cleanups.push(() => h.close());
  return h;
}

async function closedPort(): Promise<number> {
  const { port } = await socketServer(() => undefined);
  await cleanups.pop()!();
  return port;
}

describe("enclave unreachable", () => {
  it("answers 503 ERR_ENCLAVE_UNAVAILABLE over TCP and over a unix socket path", async () => {
    for (const enclave of [
      { host: "127.0.0.1", port: await closedPort() },
      { socketPath: join(tmpdir(), `no-such-enclave-${process.pid}.sock`) },
    ]) {
      const h = await host(enclave);
      const res = await h.app.inject({ method: "GET", url: `/api/v1/evidence?nonce=${"00".repeat(16)}` });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({
        error: { code: "ERR_ENCLAVE_UNAVAILABLE", message: "enclave unavailable" },
      });
    }
  });

  it("retries GETs a bounded number of times and never retries a POST", async () => {
    const server = await socketServer((s) => s.destroy());
    const h = await host({ host: "127.0.0.1", port: server.port }, { enclaveGetRetries: 3 });
    const get = await h.app.inject({ method: "GET", url: "/api/v1/contract" });
    expect(get.statusCode).toBe(503);
    expect(server.connections()).toBe(4);

    const post = await h.app.inject({
      method: "POST",
      url: "/api/v1/queries",
      payload: { jwe: fakeJwe("q") },
    });
    expect(post.statusCode).toBe(503);
    expect(post.json().error.code).toBe("ERR_ENCLAVE_UNAVAILABLE");
    // One query connection, plus the best-effort audit sync that follows every mutating relay (no retries).
    expect(server.connections()).toBe(4 + 2);
  });

  it("health stays 200 and says the enclave is unreachable", async () => {
    const h = await host({ host: "127.0.0.1", port: await closedPort() });
    const res = await h.app.inject({ method: "GET", url: "/api/v1/health" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      ok: false,
      enclave: { reachable: false, error: { code: "ERR_ENCLAVE_UNAVAILABLE" } },
    });
  });

  it("gives up on a silent enclave with 504 ERR_ENCLAVE_TIMEOUT", async () => {
    const server = await socketServer(() => undefined);
    const h = await host({ host: "127.0.0.1", port: server.port }, { enclaveIdleTimeoutMs: 150 });
    const res = await h.app.inject({ method: "GET", url: "/api/v1/contract" });
    expect(res.statusCode).toBe(504);
    expect(res.json().error.code).toBe("ERR_ENCLAVE_TIMEOUT");
    expect(server.connections()).toBe(1);
  });

  it("answers 502 ERR_ENCLAVE_PROTOCOL when the enclave does not speak §7", async () => {
    const server = await socketServer((s) => {
      s.once("data", () =>
        s.end("HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\noops"),
      );
    });
    const h = await host({ host: "127.0.0.1", port: server.port });
    const res = await h.app.inject({ method: "GET", url: "/api/v1/contract" });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe("ERR_ENCLAVE_PROTOCOL");
  });

  it("the client raises typed errors", async () => {
    const client = new EnclaveClient({
      address: { host: "127.0.0.1", port: await closedPort() },
      getRetries: 0,
    });
    await expect(client.get("/v1/health")).rejects.toBeInstanceOf(EnclaveUnavailableError);
    const silent = await socketServer(() => undefined);
    const slow = new EnclaveClient({ address: { host: "127.0.0.1", port: silent.port }, idleTimeoutMs: 50 });
    await expect(slow.postJson("/v1/requests", {})).rejects.toBeInstanceOf(EnclaveTimeoutError);
  });
});
