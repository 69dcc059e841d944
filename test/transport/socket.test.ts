/**
 * The fd-socket layer over AF_UNIX (the same code as vsock: socket/bind/connect through koffi,
 * reads and writes through a libuv pipe handle), plus a vsock bind where the kernel offers it.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VMADDR_CID_ANY, VMADDR_PORT_ANY } from "../../protocol/transport/address.js";
import { connectSocket, listenSocket, type SocketListener } from "../../protocol/transport/socket-node.js";
import { skipUnless } from "../tools.js";

let dir: string;
const listeners: SocketListener[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "transport-"));
});
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function echoServer(path: string): Promise<SocketListener> {
  const l = await listenSocket({ family: "unix", path }, (s) => s.pipe(s));
  listeners.push(l);
  return l;
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Writes `data`, half-closes, and collects everything the peer sends back until it closes. */
function roundTrip(s: net.Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (b: Buffer) => parts.push(b));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(parts)));
    s.end(data);
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("fd sockets over AF_UNIX", () => {
  it("listens, reports its address, and relays 16 MiB both ways byte-exact", async () => {
    const path = join(dir, "echo.sock");
    const l = await echoServer(path);
    expect(l.address).toEqual({ family: "unix", path });
    const data = randomBytes(16 * 1024 * 1024);
    const back = await roundTrip(await connectSocket({ family: "unix", path }), data);
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
  });

  it("serves concurrent connections independently", async () => {
    const path = join(dir, "echo.sock");
    await echoServer(path);
    const payloads = Array.from({ length: 16 }, (_, i) => randomBytes(64 * 1024 + i));
    const answers = await Promise.all(
      payloads.map(async (p) => roundTrip(await connectSocket({ family: "unix", path }), p)),
    );
    expect(answers.map(sha)).toEqual(payloads.map(sha));
  });

  it("stops accepting on close while open connections carry on", async () => {
    const path = join(dir, "echo.sock");
    let accepted!: () => void;
    const wasAccepted = new Promise<void>((resolve) => {
      accepted = resolve;
    });
    const l = await listenSocket({ family: "unix", path }, (s) => {
      s.pipe(s);
      accepted();
    });
    const open = await connectSocket({ family: "unix", path });
    // A connection still in the kernel's backlog dies with the listener; this one was accepted.
    await wasAccepted;
    await l.close();
    await expect(connectSocket({ family: "unix", path })).rejects.toMatchObject({
      code: "ERR_TRANSPORT",
      reason: "connect",
      detail: "ECONNREFUSED",
    });
    const back = await roundTrip(open, Buffer.from("still here"));
    expect(back.toString()).toBe("still here");
    await l.close(); // idempotent
  });

  it("fails connects with a typed error that names the errno, not the path, and leaks no fd", async () => {
    const path = join(dir, "nothing.sock");
    await connectSocket({ family: "unix", path }).catch(() => {}); // warm up koffi's own fds
    const before = openFds();
    for (let i = 0; i < 200; i++) {
      const e = await connectSocket({ family: "unix", path }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: "ERR_TRANSPORT", reason: "connect", detail: "ENOENT" });
      expect((e as Error).message).not.toContain(dir);
    }
    expect(openFds()).toBe(before);
  });

  it("fails a bind on a taken path without leaking the fd", async () => {
    const path = join(dir, "taken.sock");
    await echoServer(path);
    const before = openFds();
    for (let i = 0; i < 50; i++) {
      await expect(listenSocket({ family: "unix", path }, () => {})).rejects.toMatchObject({
        code: "ERR_TRANSPORT",
        reason: "listen",
        detail: "EADDRINUSE",
      });
    }
    expect(openFds()).toBe(before);
  });

  it("refuses a path that does not fit sockaddr_un before making any fd", async () => {
    await expect(connectSocket({ family: "unix", path: `/${"a".repeat(120)}` })).rejects.toMatchObject({
      code: "ERR_TRANSPORT",
      reason: "address",
    });
  });
});

/** Whether this kernel makes AF_VSOCK sockets at all (it may still have no loopback transport). */
async function vsockSupported(): Promise<boolean> {
  try {
    const l = await listenSocket({ family: "vsock", cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY }, () => {});
    await l.close();
    return true;
  } catch (e) {
    if ((e as { reason?: unknown }).reason === "unsupported") return false;
    throw e;
  }
}
const hasVsock = await vsockSupported();
const NO_VSOCK = "this kernel has no AF_VSOCK";

describe("fd sockets over AF_VSOCK", () => {
  it("binds any CID and port, reports the kernel's port, and closes", async (ctx) => {
    skipUnless(ctx, hasVsock, NO_VSOCK);
    const before = openFds();
    const l = await listenSocket({ family: "vsock", cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY }, () => {});
    expect(l.address.family).toBe("vsock");
    const a = l.address as { cid: number; port: number };
    expect(a.cid).toBe(VMADDR_CID_ANY);
    expect(a.port).not.toBe(VMADDR_PORT_ANY);
    expect(Number.isInteger(a.port) && a.port >= 0 && a.port < 2 ** 32).toBe(true);
    expect(openFds()).toBe(before + 1);
    await l.close();
    expect(openFds()).toBe(before);
  });

  it("fails a connect nobody answers with a typed error and closes the fd", async (ctx) => {
    skipUnless(ctx, hasVsock, NO_VSOCK);
    const before = openFds();
    // CID 1 is local; without a loopback transport the kernel times out (2 s), else nothing listens.
    const e = await connectSocket({ family: "vsock", cid: 1, port: 0x7ffffff0 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({ code: "ERR_TRANSPORT" });
    expect(["ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "ENODEV", "EHOSTUNREACH"]).toContain(
      (e as { detail?: string }).detail,
    );
    expect(openFds()).toBe(before);
  });

  it("reports a kernel without AF_VSOCK as unsupported, for connects too", async (ctx) => {
    skipUnless(ctx, !hasVsock, "this kernel has AF_VSOCK; the refusal is for kernels without it");
    await expect(connectSocket({ family: "vsock", cid: 3, port: 7000 })).rejects.toMatchObject({
      code: "ERR_TRANSPORT",
      reason: "unsupported",
    });
  });
});
