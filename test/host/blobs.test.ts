import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BadIdError } from "../../host/errors.js";
import { BlobStore } from "../../host/store.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

const octet = { "content-type": "application/octet-stream" };
let host: TestHost;

beforeEach(async () => {
  // No enclave is needed for the store; nothing listens on port 1.
  host = await startHost({ host: "127.0.0.1", port: 1 }, { limits: { maxBlobBytes: 4096 } });
});
afterEach(async () => host.close());

const put = (id: string, payload: Buffer, headers: Record<string, string> = octet) =>
  host.app.inject({ method: "PUT", url: `/api/v1/blobs/${id}`, headers, payload });

describe("PUT/HEAD /blobs/:sha256", () => {
  it("stores bytes under their digest, idempotently, and HEAD reports them", async () => {
    const data = randomBytes(3000);
    const id = sha256hex(data);
    const first = await put(id, data);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({ digest: id, size: 3000, created: true });
    expect(await readFile(join(host.dir, "blobs", id))).toEqual(data);

    const again = await put(id, data);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ created: false, size: 3000 });

    const head = await host.app.inject({ method: "HEAD", url: `/api/v1/blobs/${id}` });
    expect(head.statusCode).toBe(200);
    expect(head.headers["content-length"]).toBe("3000");
    const missing = await host.app.inject({ method: "HEAD", url: `/api/v1/blobs/${sha256hex("other")}` });
    expect(missing.statusCode).toBe(404);
  });

  it("refuses bytes that do not hash to the URL's digest and keeps nothing", async () => {
    const data = randomBytes(100);
    const wrong = sha256hex("something else");
    const res = await put(wrong, data);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(await readdir(join(host.dir, "blobs"))).toEqual([]);
    expect(await readdir(join(host.dir, "tmp"))).toEqual([]);
    expect((await host.app.inject({ method: "HEAD", url: `/api/v1/blobs/${wrong}` })).statusCode).toBe(404);
  });

  it("refuses a blob over the limit, by Content-Length and while streaming", async () => {
    const data = randomBytes(5000);
    const res = await put(sha256hex(data), data);
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe("ERR_TOO_LARGE");

    // Chunked over a real socket: no Content-Length, so the limit trips mid-stream.
    await host.app.listen({ host: "127.0.0.1", port: 0 });
    const port = (host.app.server.address() as AddressInfo).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, method: "PUT", path: `/api/v1/blobs/${sha256hex(data)}`, headers: octet },
        (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      for (let i = 0; i < 5; i++) req.write(data.subarray(i * 1000, (i + 1) * 1000));
      req.end();
    });
    expect(status).toBe(413);
    expect(await readdir(join(host.dir, "blobs"))).toEqual([]);
    expect(await readdir(join(host.dir, "tmp"))).toEqual([]);
  });

  it("refuses ids that are not 64 lowercase hex, including traversal attempts", async () => {
    const data = Buffer.from("x");
    const ids = [
      "../../etc/passwd",
      "..%2F..%2Fetc%2Fpasswd",
      "%2e%2e%2f%2e%2e%2fescape",
      "..%252F..%252Fescape",
      sha256hex(data).toUpperCase(),
      sha256hex(data).slice(1),
      `${sha256hex(data)}0`,
      `${sha256hex(data).slice(0, 62)}%2F`,
    ];
    for (const id of ids) {
      const res = await put(id, data);
      expect(res.statusCode, id).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, id).toBeLessThan(500);
      const head = await host.app.inject({ method: "HEAD", url: `/api/v1/blobs/${id}` });
      expect(head.statusCode, id).toBeGreaterThanOrEqual(400);
    }
    expect(await readdir(join(host.dir, "blobs"))).toEqual([]);
    expect((await readdir(host.dir)).sort()).toEqual(["blobs", "guard", "results", "tmp", "uploads"]);
  });

  it("the store itself refuses any id that is not exactly 64 lowercase hex", async () => {
    const store = await BlobStore.open(host.dir);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 80 }).filter((s) => !/^[0-9a-f]{64}$/.test(s)),
        async (id) => {
          await expect(store.put(id, Readable.from([Buffer.from("x")]))).rejects.toBeInstanceOf(BadIdError);
          await expect(store.size(id)).rejects.toBeInstanceOf(BadIdError);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("streams a multi-megabyte upload over a real socket and stores it byte for byte", async () => {
    const big = await startHost({ host: "127.0.0.1", port: 1 });
    try {
      await big.app.listen({ host: "127.0.0.1", port: 0 });
      const port = (big.app.server.address() as AddressInfo).port;
      const data = randomBytes(6 * 1024 * 1024 + 7);
      const id = sha256hex(data);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/blobs/${id}`, {
        method: "PUT",
        headers: octet,
        body: new Uint8Array(data),
      });
      expect(res.status).toBe(201);
      expect((await readFile(join(big.dir, "blobs", id))).equals(data)).toBe(true);
    } finally {
      await big.close();
    }
  });
});
