/**
 * The real enclave HTTP server (enclave/server.ts `listen`) reached by the real host
 * EnclaveClient through the fd-socket path (koffi socket/bind/connect, libuv pipe handles): the
 * code a Nitro deployment runs over vsock, run here over AF_UNIX because this kernel has no vsock
 * loopback transport.
 */

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSimProvider } from "../../enclave/platform/sim.js";
import { Enclave } from "../../enclave/runtime.js";
import { listen, parseListen, type Served } from "../../enclave/server.js";
import { EnclaveClient, expectOk } from "../../host/enclave-client.js";
import { EnclaveUnavailableError } from "../../host/errors.js";
import type { SocketTarget } from "../../protocol/transport/address.js";
import { listenSocket } from "../../protocol/transport/socket-node.js";
import {
  approvals,
  contractFor,
  encryptToSelf,
  grantBody,
  makeParties,
  pieces,
  sealed,
  sha256hex,
  utf8,
} from "../enclave/world.js";
import { exposures, useCaseCsv } from "../sql/usecases.js";

let dir: string;
let enclave: Enclave;
let served: Served;
let path: string;
let target: SocketTarget;
const clients: EnclaveClient[] = [];

function client(to: SocketTarget = target, getRetries = 0): EnclaveClient {
  const c = new EnclaveClient({ address: { socket: to }, getRetries, retryBaseMs: 1 });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "enclave-fd-"));
  enclave = await Enclave.start({
    provider: await createSimProvider({ platform: "nitro" }),
    engineOptions: { memoryLimit: "512MB", threads: 2 },
  });
  path = join(dir, "enclave.sock");
  target = { family: "unix", path };
  served = await listen(enclave, { socket: target });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await served.close();
  enclave.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("--listen", () => {
  it("takes vsock:PORT (any CID) and vsock:CID:PORT beside the TCP and unix forms", () => {
    expect(parseListen("vsock:7000")).toEqual({ socket: { family: "vsock", cid: 0xffffffff, port: 7000 } });
    expect(parseListen("vsock:16:7000")).toEqual({ socket: { family: "vsock", cid: 16, port: 7000 } });
    expect(parseListen("0.0.0.0:7000")).toEqual({ host: "0.0.0.0", port: 7000 });
    expect(parseListen("/run/e.sock")).toEqual({ path: "/run/e.sock" });
    for (const bad of ["vsock:", "vsock:07000", "vsock:1:2:3", "vsock:4294967296"]) {
      expect(() => parseListen(bad), bad).toThrow(expect.objectContaining({ code: "ERR_TRANSPORT" }));
    }
  });
});

describe("enclave API over an fd socket", () => {
  it("reports where it listens in the textual form", () => {
    expect(served.address).toBe(`unix:${path}`);
  });

  it("answers GETs and a POST; a multi-megabyte upload arrives byte-exact", async () => {
    const c = client();
    const health = expectOk(await c.get("/v1/health"));
    expect(health).toMatchObject({ ok: true, platform: "nitro", simulated: true, contractDigest: null });
    const evidence = expectOk(await c.get("/v1/evidence", { nonce: "ab".repeat(32) }));
    expect(evidence).toHaveProperty("evidence");

    const { advertiser, publisher } = await makeParties();
    const contract = contractFor([advertiser, publisher]);
    const accepted = await c.postJson("/v1/contract", {
      contract,
      approvals: await approvals(contract, [advertiser, publisher]),
    });
    expect(accepted.status).toBe(200);

    // Several MiB of age ciphertext; the enclave checks its digest and every chunk's tag.
    const csv = useCaseCsv(40_000).exposures;
    const { ciphertext, fileKey } = await encryptToSelf(publisher, utf8(csv));
    expect(ciphertext.length).toBeGreaterThan(2 * 1024 * 1024);
    const digest = sha256hex(ciphertext);
    const jwe = await sealed(
      enclave,
      contract,
      publisher,
      "grant",
      await grantBody(contract, publisher, { dataset: exposures.id, ciphertextDigest: digest, fileKey }),
    );
    expect((await c.postJson("/v1/requests", { jwe })).status).toBe(200);
    const ingest = await c.postStream(
      `/v1/datasets/${exposures.id}/ingest`,
      { digest },
      pieces(ciphertext, 64 * 1024),
      ciphertext.length,
    );
    expect(ingest.status).toBe(200);
  });

  it("serves concurrent connections", async () => {
    const c = client();
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 2 ? c.get("/v1/health") : c.get("/v1/evidence", { nonce: i.toString(16).padStart(64, "0") }),
      ),
    );
    for (const r of replies) expect(r.status).toBe(200);
  });

  it("gives EnclaveUnavailableError when nothing listens, after its GET retries", async () => {
    const nowhere = client({ family: "unix", path: join(dir, "nothing.sock") }, 2);
    await expect(nowhere.get("/v1/health")).rejects.toBeInstanceOf(EnclaveUnavailableError);
    await expect(nowhere.postJson("/v1/contract", {})).rejects.toMatchObject({
      code: "ERR_ENCLAVE_UNAVAILABLE",
      cause: { code: "ERR_TRANSPORT", detail: "ENOENT" },
    });
  });
});

describe("an HTTP server fed by listenSocket, through the host's fd agent", () => {
  it("relays 8 MiB up and the same bytes (as base64 JSON) down, byte-exact", async () => {
    const echo = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (b: Buffer) => parts.push(b));
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ echo: Buffer.concat(parts).toString("base64") }));
      });
    });
    const to: SocketTarget = { family: "unix", path: join(dir, "echo.sock") };
    const l = await listenSocket(to, (s) => echo.emit("connection", s));
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const reply = await client(to).postStream("/echo", {}, pieces(data, 100_000), data.length);
      const back = Buffer.from(expectOk(reply).echo as string, "base64");
      expect(back.length).toBe(data.length);
      expect(sha256hex(back)).toBe(sha256hex(data));
    } finally {
      await l.close();
    }
  });
});

describe("closing the enclave listener", () => {
  it("cuts open connections, refuses new ones, and resolves", async () => {
    const own = await Enclave.start({
      provider: await createSimProvider({ platform: "nitro" }),
      engineOptions: { memoryLimit: "256MB", threads: 1 },
    });
    const to: SocketTarget = { family: "unix", path: join(dir, "closing.sock") };
    const s = await listen(own, { socket: to });
    try {
      const c = client(to);
      // A body that never finishes keeps the request open inside the server.
      const body = new PassThrough();
      body.write("{");
      const inFlight = c.postStream("/v1/contract", {}, body, 1000).then(
        () => undefined,
        (e: unknown) => e,
      );
      await once(s.server, "request");
      await s.close();
      expect(await inFlight).toBeInstanceOf(EnclaveUnavailableError);
      await expect(c.get("/v1/health")).rejects.toMatchObject({
        code: "ERR_ENCLAVE_UNAVAILABLE",
        cause: { code: "ERR_TRANSPORT", detail: "ECONNREFUSED" },
      });
    } finally {
      own.close();
    }
  });
});
