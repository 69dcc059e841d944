/**
 * The enclave API over plain HTTP/1.1 (docs/PROTOCOL.md §7) on a TCP port, a unix socket or vsock.
 * Everything that matters is signed or encrypted end to end, so this layer only parses, limits
 * sizes, streams ingest bodies and maps typed errors to statuses and fixed messages; an error's
 * own words go only to the party it answers, sealed (http-errors.ts). It logs nothing.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { UsageError } from "../attestation/errors.js";
import { formatTarget, parseVsockListen, type SocketTarget } from "../protocol/transport/address.js";
import { listenSocket } from "../protocol/transport/socket-node.js";
import { NotFoundError, TooLargeError } from "./errors.js";
import { errorReply, sealDetail } from "./http-errors.js";
import { inRequestScope, type RequestScope } from "./requester.js";
import type { Enclave } from "./runtime.js";

export interface ServerOptions {
  /** Limit for JSON bodies (contract, requests). Default 1 MiB. */
  maxJsonBytes?: number;
  /** Limit for an audit restore body, a whole log. Default 256 MiB. */
  maxRestoreBytes?: number;
}

/** `socket` is a listener made by fd (vsock; unix too, so tests run the same code without vsock). */
export type ListenAddress = { host: string; port: number } | { path: string } | { socket: SocketTarget };

const MiB = 1024 * 1024;
const INGEST = /^\/v1\/datasets\/([^/]+)\/ingest$/;

/** Reads a JSON body of at most `limit` bytes. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw new TooLargeError("request body too large");
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    size += piece.length;
    if (size > limit) throw new TooLargeError("request body too large");
    parts.push(piece);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new UsageError("request body is not JSON");
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": bytes.length,
    "cache-control": "no-store",
  });
  res.end(bytes);
}

function positiveInt(text: string | null, fallback: number): number {
  if (text === null) return fallback;
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new UsageError("from must be a positive integer");
  return Number(text);
}

async function route(enclave: Enclave, options: Required<ServerOptions>, req: IncomingMessage) {
  const url = new URL(req.url ?? "/", "http://enclave");
  const path = url.pathname;
  const method = req.method ?? "GET";
  if (method === "GET") {
    if (path === "/v1/health") return enclave.health();
    if (path === "/v1/evidence") return enclave.evidence(url.searchParams.get("nonce"));
    if (path === "/v1/contract") return enclave.getContract();
    if (path === "/v1/audit") return enclave.audit(positiveInt(url.searchParams.get("from"), 1));
    if (path === "/v1/loads") return enclave.loads();
  } else if (method === "POST") {
    if (path === "/v1/contract") return enclave.acceptContract(await readJson(req, options.maxJsonBytes));
    if (path === "/v1/requests") {
      const body = await readJson(req, options.maxJsonBytes);
      const keys = body !== null && typeof body === "object" ? Object.keys(body) : [];
      if (keys.length !== 1 || keys[0] !== "jwe") throw new UsageError("request body must be {jwe}");
      return enclave.handleRequest((body as { jwe: unknown }).jwe);
    }
    if (path === "/v1/audit/restore")
      return enclave.restoreAudit(await readJson(req, options.maxRestoreBytes));
    const ingest = INGEST.exec(path);
    if (ingest) {
      // The body's chunks are fresh buffers no one else holds: they may move to the decrypt workers.
      return enclave.ingest(decodeURIComponent(ingest[1]!), url.searchParams.get("digest"), req, {
        ownsInput: true,
      });
    }
  }
  throw new NotFoundError("no such route");
}

export function createEnclaveServer(enclave: Enclave, options: ServerOptions = {}): Server {
  const limits: Required<ServerOptions> = {
    maxJsonBytes: options.maxJsonBytes ?? MiB,
    maxRestoreBytes: options.maxRestoreBytes ?? 256 * MiB,
  };
  return createServer((req, res) => {
    const scope: RequestScope = {};
    inRequestScope(scope, () => route(enclave, limits, req)).then(
      (body) => {
        // A repeated grant is answered without reading its upload: do not read the rest of it.
        if (!req.readableEnded) {
          res.setHeader("connection", "close");
          req.resume();
        }
        send(res, 200, body);
      },
      async (e: unknown) => {
        const { status, body } = errorReply(e);
        // Whatever of the body was not read is discarded, and the connection not reused.
        if (!req.readableEnded) {
          res.setHeader("connection", "close");
          req.resume();
        }
        const detail = scope.requester
          ? await sealDetail(e, scope.requester, enclave.keys.signingKey).catch(() => undefined)
          : undefined;
        send(res, status, detail ? { error: { ...body.error, detail } } : body);
      },
    );
  });
}

/** Parses "--listen": "host:port", an absolute unix socket path, "vsock:PORT" or "vsock:CID:PORT". */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith("vsock:")) return { socket: parseVsockListen(text) };
  if (text.startsWith("/")) return { path: text };
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError("listen: expected host:port, /path/to/socket or vsock:PORT");
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export interface Served {
  server: Server;
  address: string;
  close: () => Promise<void>;
}

/** Whether something accepts connections on the unix socket `path` (false: absent or stale). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/** Starts serving; a unix socket is made owner-only. Resolves once listening. */
export async function listen(
  enclave: Enclave,
  address: ListenAddress,
  options: ServerOptions = {},
): Promise<Served> {
  const server = createEnclaveServer(enclave, options);
  if ("socket" in address) return serveOnSocket(server, address.socket);
  if ("path" in address) {
    // A socket another enclave still answers on is its, not ours to take over.
    if (await answers(address.path)) {
      throw new UsageError(
        `listen: another process is serving on ${address.path}; stop it or choose another path`,
      );
    }
    // A socket left by a previous run would make listen fail; never remove anything else.
    try {
      if (lstatSync(address.path).isSocket()) unlinkSync(address.path);
    } catch {
      // Not there: nothing to clean.
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("path" in address) server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  let where: string;
  if ("path" in address) {
    chmodSync(address.path, 0o600);
    where = address.path;
  } else {
    const a = server.address() as AddressInfo;
    where = `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }
  return {
    server,
    address: where,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * The same HTTP server fed by an fd listener (Node's net cannot listen on vsock): each accepted
 * connection is handed to it as net.Server would. http.Server arms its connection tracking
 * (header and request timeouts, closeAllConnections) on "listening", which net.Server emits only
 * for listeners of its own, so it is announced here.
 */
async function serveOnSocket(server: Server, target: SocketTarget): Promise<Served> {
  const open = new Set<Socket>();
  const listener = await listenSocket(target, (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    server.emit("connection", socket);
  });
  server.emit("listening");
  return {
    server,
    address: formatTarget(listener.address),
    close: async () => {
      await listener.close();
      // Nothing of net.Server's own is listening, so this only stops the tracking and emits "close".
      server.close();
      const closing = [...open].map((s) => new Promise((resolve) => s.once("close", resolve)));
      for (const s of open) s.destroy();
      await Promise.all(closing);
    },
  };
}
