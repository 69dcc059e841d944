/**
 * Resumable uploads at the host: appends at the offset the host reports, bytes kept when the
 * client goes away, the digest checked once the declared length is reached, stale partials swept.
 */
import { randomBytes } from "node:crypto";
import { readdir, readFile, utimes } from "node:fs/promises";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "../../host/store.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

let host: TestHost;
beforeEach(async () => {
  // No enclave is needed for uploads.
  host = await startHost({ host: "127.0.0.1", port: 9 });
});
afterEach(async () => host.close());

const status = async (digest: string) =>
  (await host.app.inject({ method: "GET", url: `/api/v1/blobs/${digest}/upload` })).json();

const patch = (digest: string, offset: number, length: number, payload: Buffer) =>
  host.app.inject({
    method: "PATCH",
    url: `/api/v1/blobs/${digest}?offset=${offset}&length=${length}`,
    headers: { "content-type": "application/octet-stream" },
    payload,
  });

describe("PATCH /blobs/{sha256}", () => {
  it("stores a blob sent in parts, each at the offset the host reports", async () => {
    const data = randomBytes(300_000);
    const digest = sha256hex(data);
    expect(await status(digest)).toEqual({ digest, offset: 0, length: null, complete: false });
    const first = await patch(digest, 0, data.length, data.subarray(0, 100_000));
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ offset: 100_000, complete: false });
    expect(await status(digest)).toEqual({ digest, offset: 100_000, length: data.length, complete: false });
    const last = await patch(digest, 100_000, data.length, data.subarray(100_000));
    expect(last.json()).toMatchObject({ offset: data.length, complete: true, created: true });
    expect(await readFile(join(host.dir, "blobs", digest))).toEqual(data);
    expect(await status(digest)).toEqual({
      digest,
      offset: data.length,
      length: data.length,
      complete: true,
    });
    expect(await readdir(join(host.dir, "uploads"))).toEqual([]);
    // Already stored: nothing is read, nothing changes.
    const again = await patch(digest, 0, data.length, data.subarray(0, 10));
    expect(again.json()).toMatchObject({ complete: true, created: false });
  });

  it("refuses bytes that do not start where the host's copy ends, and keeps its copy", async () => {
    const data = randomBytes(50_000);
    const digest = sha256hex(data);
    await patch(digest, 0, data.length, data.subarray(0, 20_000));
    for (const offset of [0, 10_000, 30_000]) {
      const r = await patch(digest, offset, data.length, data.subarray(offset, offset + 1000));
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe("ERR_UPLOAD_OFFSET");
    }
    expect((await status(digest)).offset).toBe(20_000);
    const other = await patch(digest, 20_000, data.length + 1, data.subarray(20_000));
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe("ERR_UPLOAD_CONFLICT");
    expect((await patch(digest, 20_000, data.length, data.subarray(20_000))).json().complete).toBe(true);
  });

  it("drops an upload whose bytes do not hash to its name", async () => {
    const data = randomBytes(40_000);
    const digest = sha256hex(data);
    await patch(digest, 0, data.length, data.subarray(0, 20_000));
    const tampered = Buffer.from(data.subarray(20_000));
    tampered[0]! ^= 1;
    const r = await patch(digest, 20_000, data.length, tampered);
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(await status(digest)).toEqual({ digest, offset: 0, length: null, complete: false });
    expect((await host.app.inject({ method: "HEAD", url: `/api/v1/blobs/${digest}` })).statusCode).toBe(404);
  });

  it("refuses more bytes than the declared length without keeping any of them", async () => {
    const data = randomBytes(10_000);
    const digest = sha256hex(data);
    await patch(digest, 0, data.length, data.subarray(0, 4_000));
    const r = await patch(
      digest,
      4_000,
      data.length,
      Buffer.concat([data.subarray(4_000), Buffer.alloc(10)]),
    );
    expect(r.statusCode).toBe(413);
    expect((await status(digest)).offset).toBe(4_000);
  });

  it("keeps what arrived before the client went away; the upload resumes after it", async () => {
    await host.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = host.app.server.address() as AddressInfo;
    const data = randomBytes(4 * 1024 * 1024);
    const digest = sha256hex(data);
    const sent = 1024 * 1024 + 12_345;
    await new Promise<void>((resolve) => {
      const req = request({
        host: "127.0.0.1",
        port,
        method: "PATCH",
        path: `/api/v1/blobs/${digest}?offset=0&length=${data.length}`,
        headers: { "content-type": "application/octet-stream", "content-length": data.length },
      });
      req.on("error", () => resolve());
      req.write(data.subarray(0, sent), () => setTimeout(() => req.destroy(), 200));
    });
    let held = 0;
    for (let i = 0; i < 50 && held < sent; i++) {
      held = (await status(digest)).offset;
      if (held < sent) await new Promise((r) => setTimeout(r, 50));
    }
    expect(held).toBe(sent);
    // Until the host has seen the connection close, the first append still holds the upload.
    let r = await patch(digest, held, data.length, data.subarray(held));
    for (let i = 0; i < 40 && r.statusCode === 409; i++) {
      expect(r.json().error.code).toBe("ERR_UPLOAD_CONFLICT");
      await new Promise((resolve) => setTimeout(resolve, 50));
      r = await patch(digest, held, data.length, data.subarray(held));
    }
    expect(r.json()).toMatchObject({ complete: true, created: true });
    expect(sha256hex(await readFile(join(host.dir, "blobs", digest)))).toBe(digest);
  });
});

describe("the store", () => {
  it("continues a partial upload after a restart, rebuilding its hash from disk", async () => {
    const data = randomBytes(70_000);
    const digest = sha256hex(data);
    await patch(digest, 0, data.length, data.subarray(0, 33_333));
    const reopened = await BlobStore.open(host.dir);
    const r = await reopened.append(digest, 33_333, data.length, Readable.from([data.subarray(33_333)]));
    expect(r).toMatchObject({ complete: true, created: true });
    expect(await readFile(join(host.dir, "blobs", digest))).toEqual(data);
  });

  it("sweeps partial uploads nobody touched within the time to live", async () => {
    const data = randomBytes(1_000);
    const digest = sha256hex(data);
    await patch(digest, 0, data.length, data.subarray(0, 500));
    const old = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    for (const name of await readdir(join(host.dir, "uploads"))) {
      await utimes(join(host.dir, "uploads", name), old, old);
    }
    await BlobStore.open(host.dir, undefined, 24 * 3600 * 1000);
    expect(await readdir(join(host.dir, "uploads"))).toEqual([]);
  });
});
