/**
 * The Node upload against a real host: one pass to hash, one to send, no temporary file; a
 * dropped connection resumes where the host's copy ends; a file changed since it was encrypted
 * stops the upload before its new bytes leave.
 */
import { createHash } from "node:crypto";
import { mkdtemp, open, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BLOCK_BYTES, uploadFile } from "../../client/node/upload.js";
import type { CleanroomClient } from "../../client/sdk/client.js";
import { HostClient } from "../../client/sdk/http.js";
import { generatePartyKeys, loadPartyKeys, type PartyKeys } from "../../client/sdk/keys.js";
import { HostState, MemoryStateStore } from "../../client/sdk/state.js";
import { decryptBytes } from "../../protocol/age/stream-node.js";
import { sha256hex, startHost, type TestHost } from "./helpers.js";

/**
 * A full disk under the host's store, while `full.on`: a write stream into its uploads directory
 * fails with ENOSPC once `full.after` bytes went into it, as the kernel reports it.
 */
const full = vi.hoisted(() => ({ on: false, after: 0 }));
vi.mock("node:fs", async (original) => {
  const fs = await original<typeof import("node:fs")>();
  const createWriteStream = ((path: string, options: unknown) => {
    const stream = fs.createWriteStream(path, options as never);
    if (!full.on || !String(path).includes(`${sep}uploads${sep}`)) return stream;
    let written = 0;
    const write = stream._write.bind(stream);
    const w = stream as Writable & { _writev?: unknown };
    w._writev = undefined;
    w._write = (chunk: Buffer, encoding, done) => {
      if (written + chunk.length > full.after) {
        const e = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        return done(e);
      }
      written += chunk.length;
      write(chunk, encoding, done);
    };
    return stream;
  }) as typeof fs.createWriteStream;
  return { ...fs, default: { ...fs, createWriteStream }, createWriteStream };
});

let host: TestHost;
let url: string;
let work: string;
let keys: PartyKeys;
const proxies: Server[] = [];

beforeEach(async () => {
  host = await startHost({ host: "127.0.0.1", port: 9 });
  await host.app.listen({ host: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${(host.app.server.address() as AddressInfo).port}`;
  work = await mkdtemp(join(tmpdir(), "upload-client-"));
  keys = await loadPartyKeys(await generatePartyKeys());
});
afterEach(async () => {
  full.on = false;
  for (const p of proxies.splice(0)) p.close();
  await host.close();
  await rm(work, { recursive: true, force: true });
});

/**
 * What uploadFile uses of a client: its keys, its state and the host. Attestation is the SDK's
 * own concern (test/client/sdk.test.ts: nothing is sent when it fails); here it always passes.
 */
async function client(store = new MemoryStateStore(), via = url): Promise<CleanroomClient> {
  const hostClient = new HostClient(via);
  return {
    attestation: async () => ({}),
    keys,
    host: hostClient,
    state: await HostState.open(store, hostClient.baseUrl),
  } as unknown as CleanroomClient;
}

/**
 * A TCP proxy to the host that cuts the first `cuts` connections carrying a PATCH once `after`
 * bytes of them went through, and records the offset each PATCH starts at.
 */
/**
 * A TCP proxy to the host. For each connection `connection()` gives the handler of what the
 * client sends: it returns true when it dealt with a piece itself (the piece is not forwarded).
 */
async function proxyToHost(
  connection: () => (d: Buffer, client: Socket, upstream: Socket) => boolean,
): Promise<string> {
  const target = new URL(url);
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    const handle = connection();
    client.on("data", (d: Buffer) => {
      if (!handle(d, client, upstream)) upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => client.write(d));
    for (const s of [client, upstream]) {
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  proxies.push(proxy);
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

/**
 * Cuts the first `cuts` connections carrying a PATCH once `after` bytes of them went through, and
 * records the offset each PATCH starts at.
 */
async function droppingProxy(after: number, cuts: number): Promise<{ url: string; offsets: number[] }> {
  const offsets: number[] = [];
  let left = cuts;
  const proxied = await proxyToHost(() => {
    let seen = 0;
    let cut: boolean | undefined;
    return (d, client, upstream) => {
      if (cut === undefined) {
        const m = /^PATCH \S*[?&]offset=(\d+)/.exec(d.subarray(0, 200).toString("latin1"));
        if (m) offsets.push(Number(m[1]));
        cut = m !== null && left > 0;
        if (cut) left--;
      }
      seen += d.length;
      if (!cut || seen < after) return false;
      client.destroy();
      upstream.destroy();
      return true;
    };
  });
  return { url: proxied, offsets };
}

/**
 * Answers the first PATCH itself: a 409 status line and headers announcing a body, then a reset
 * while the request is still being sent (no body arrives).
 */
async function answerCuttingProxy(): Promise<{ url: string; cut: () => boolean }> {
  let cut = false;
  const proxied = await proxyToHost(() => {
    let patch: boolean | undefined;
    return (d, client) => {
      patch ??= !cut && d.subarray(0, 6).toString("latin1") === "PATCH ";
      if (!patch) return false;
      if (!cut) {
        cut = true;
        client.write("HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n");
        setTimeout(() => client.resetAndDestroy(), 20);
      }
      return true;
    };
  });
  return { url: proxied, cut: () => cut };
}

async function csv(name: string, mib: number): Promise<string> {
  const path = join(work, name);
  const line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,42\n";
  await writeFile(path, line.repeat(Math.ceil((mib * 1024 * 1024) / line.length)));
  return path;
}

const stored = (digest: string) => readFile(join(host.dir, "blobs", digest));

/** The age file decrypts with the party's identity to exactly the file's bytes. */
async function opensTo(blob: Uint8Array, path: string): Promise<boolean> {
  return Buffer.from(await decryptBytes(blob, keys.ageIdentity)).equals(await readFile(path));
}

describe("uploadFile", () => {
  it("stores the age file of the plaintext under its SHA-256; the unchanged file again is the same blob", async () => {
    const path = await csv("small.csv", 1);
    const c = await client();
    const up = await uploadFile(c, path);
    const blob = await stored(up.digest);
    expect(sha256hex(blob)).toBe(up.digest);
    expect(up).toMatchObject({ size: blob.length, skipped: false, resumedFrom: 0 });
    expect(await opensTo(blob, path)).toBe(true);
    // The header is kept for the grant; nothing is left pending.
    expect(await c.state.upload(up.digest)).toMatchObject({ digest: up.digest, size: blob.length });
    // Again: the host holds it already.
    expect(await uploadFile(c, path)).toMatchObject({ digest: up.digest, skipped: true });
  });

  it("resumes after dropped connections from where the host's copy ends", async () => {
    const path = await csv("big.csv", 24);
    const proxy = await droppingProxy(9 * 1024 * 1024, 2);
    const c = await client(new MemoryStateStore(), proxy.url);
    const up = await uploadFile(c, path, { retryDelayMs: 10 });
    expect(sha256hex(await stored(up.digest))).toBe(up.digest);
    expect(await opensTo(await stored(up.digest), path)).toBe(true);
    // The first two requests cut; each later one starts where the host's copy ended (a request
    // the host refused while it still closed the cut one is made again).
    const at = proxy.offsets;
    expect(at.length).toBeGreaterThanOrEqual(3);
    expect(at[0]).toBe(0);
    expect(at[1]).toBeGreaterThan(0);
    expect(at.at(-1)).toBeGreaterThan(at[1]!);
    expect(at).toEqual([...at].sort((a, b) => a - b));
  });

  it("takes an answer cut before its body for a lost connection, asks again and finishes", async () => {
    const path = await csv("cut-answer.csv", 2);
    const proxy = await answerCuttingProxy();
    const up = await uploadFile(await client(new MemoryStateStore(), proxy.url), path, { retryDelayMs: 10 });
    expect(proxy.cut()).toBe(true);
    expect(await opensTo(await stored(up.digest), path)).toBe(true);
  });

  it("stops at once with the host's ERR_STORE_FULL when its disk fills mid-upload; a run after space is freed finishes", async () => {
    const path = await csv("full.csv", 24);
    const store = new MemoryStateStore();
    full.on = true;
    full.after = 5 * 1024 * 1024;
    const started = Date.now();
    // The host's refusal reaches the client whole, though most of the body is still on its way,
    // and a full store is not retried (the default retries would take minutes).
    await expect(uploadFile(await client(store), path)).rejects.toMatchObject({
      status: 507,
      serverCode: "ERR_STORE_FULL",
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    full.on = false;
    const again = await uploadFile(await client(store), path);
    expect(await opensTo(await stored(again.digest), path)).toBe(true);
  });

  it("a later run resumes the same ciphertext where an interrupted one stopped", async () => {
    const path = await csv("again.csv", 20);
    const store = new MemoryStateStore();
    // The same host URL for both runs (the state is kept per host); only the first is cut.
    const proxy = await droppingProxy(9 * 1024 * 1024, 1);
    const first = await client(store, proxy.url);
    await expect(uploadFile(first, path, { retries: 0 })).rejects.toMatchObject({ code: "ERR_IO" });
    const second = await uploadFile(await client(store, proxy.url), path);
    expect(second.resumedFrom).toBeGreaterThan(0);
    expect(await opensTo(await stored(second.digest), path)).toBe(true);
  });

  it("stops before sending a block of a file changed in place since it was encrypted", async () => {
    const path = await csv("changed.csv", 20);
    const mtime = new Date("2024-06-01T00:00:00Z");
    await utimes(path, mtime, mtime);
    const store = new MemoryStateStore();
    const proxy = await droppingProxy(9 * 1024 * 1024, 1);
    const first = await client(store, proxy.url);
    await expect(uploadFile(first, path, { retries: 0 })).rejects.toMatchObject({ code: "ERR_IO" });
    const c = await client(store, proxy.url);
    const digest = JSON.parse(
      [...store.values].find(([k, v]) => k.includes("/pending-uploads/") && v.length > 4)![1],
    ).digest as string;
    const held = (await c.host.uploadStatus(digest)).offset;
    expect(held).toBeLessThan(BLOCK_BYTES);
    // Same size, same mtime: only the block check can tell. The change is in the second block.
    const fh = await open(path, "r+");
    await fh.write("X", 12 * 1024 * 1024);
    await fh.close();
    await utimes(path, mtime, mtime);
    await expect(uploadFile(c, path)).rejects.toMatchObject({ code: "ERR_UPLOAD_SOURCE_CHANGED" });
    // The unchanged first block may be finished; no byte of the changed one left.
    const after = (await c.host.uploadStatus(digest)).offset;
    expect(after).toBeGreaterThanOrEqual(held);
    expect(after).toBeLessThanOrEqual(BLOCK_BYTES);
    // The next run encrypts afresh (another key, another digest) and succeeds.
    const fresh = await uploadFile(c, path);
    expect(fresh.digest).not.toBe(digest);
    expect(fresh.resumedFrom).toBe(0);
    expect(await opensTo(await stored(fresh.digest), path)).toBe(true);
  });
});

describe("a refusal while the body is still arriving", () => {
  it("reaches a client that reads the answer only once its sending has ended", async () => {
    // The host stops storing after 1 MiB of a 32 MiB append and answers at once; this client
    // reads the answer only after its request stream ended or failed. Closing on the bytes still
    // arriving would reset the connection and take the answer with it.
    full.on = true;
    full.after = 1024 * 1024;
    const size = 32 * 1024 * 1024;
    const req = httpRequest(`${url}/api/v1/blobs/${"ab".repeat(32)}?offset=0&length=${size}`, {
      method: "PATCH",
      headers: { "content-type": "application/octet-stream", "content-length": size },
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.on("error", reject);
    });
    answered.catch(() => undefined);
    // Each piece costs some work to make, as an encrypting uploader's do.
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < size / 65536; i++) {
        const piece = Buffer.alloc(65536, i);
        createHash("sha256").update(piece).digest();
        yield piece;
      }
    }
    await pipeline(Readable.from(body()), req).catch(() => undefined);
    const res = await answered;
    const parts: Buffer[] = [];
    for await (const p of res) parts.push(p as Buffer);
    expect(res.statusCode).toBe(507);
    expect(JSON.parse(Buffer.concat(parts).toString("utf8"))).toMatchObject({
      error: { code: "ERR_STORE_FULL" },
    });
  });
});
