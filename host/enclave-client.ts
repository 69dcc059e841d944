/**
 * The host's only way to the enclave: HTTP/1.1 over TCP, a unix socket or vsock (PROTOCOL.md §7).
 * Bodies are relayed as opaque bytes; JSON answers are parsed only to hand them on. Connection
 * failures become EnclaveUnavailableError; only idempotent GETs are retried, a bounded number of
 * times with exponential backoff, so a POST (a grant, a query run) is never sent twice by us.
 */
import http from "node:http";
import type { Duplex, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { SocketTarget } from "../protocol/transport/address.js";
import { connectSocket } from "../protocol/transport/socket-node.js";
import {
  EnclaveProtocolError,
  EnclaveRejectedError,
  EnclaveTimeoutError,
  EnclaveUnavailableError,
} from "./errors.js";

/** `socket`: connected by fd (vsock, which Node's net cannot open; unix through the same code in tests). */
export type EnclaveAddress =
  | { host: string; port: number }
  | { socketPath: string }
  | { socket: SocketTarget };

export interface EnclaveClientOptions {
  address: EnclaveAddress;
  /** Socket inactivity (including connecting) before giving up. Default 120 s. */
  idleTimeoutMs?: number;
  /** Extra attempts for GETs whose connection failed. Default 2. */
  getRetries?: number;
  /** First backoff delay; doubles per retry. Default 100 ms. */
  retryBaseMs?: number;
  /** Largest JSON answer accepted (query answers carry every recipient's ciphertext). Default 512 MiB. */
  maxResponseBytes?: number;
}

export interface EnclaveReply {
  status: number;
  body: unknown;
}

type Payload =
  | { kind: "none" }
  | { kind: "json"; bytes: Buffer }
  | { kind: "stream"; stream: Readable; size: number };

/** An agent whose connections are fd sockets; a failed connect surfaces as the request's "error". */
class FdSocketAgent extends http.Agent {
  constructor(private readonly target: SocketTarget) {
    super({ keepAlive: false });
  }

  override createConnection(
    _options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    connectSocket(this.target).then(
      (socket) => callback?.(null, socket),
      // Node's agent reads no stream when an error is passed.
      (e: Error) => callback?.(e, undefined as never),
    );
    return undefined;
  }
}

export class EnclaveClient {
  private readonly agent: http.Agent;
  private readonly idleTimeoutMs: number;
  private readonly getRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxResponseBytes: number;

  constructor(private readonly opts: EnclaveClientOptions) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 120_000;
    this.getRetries = opts.getRetries ?? 2;
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.maxResponseBytes = opts.maxResponseBytes ?? 512 * 1024 ** 2;
    this.agent =
      "socket" in opts.address
        ? new FdSocketAgent(opts.address.socket)
        : new http.Agent({ keepAlive: false });
  }

  /** GET, retried on connection failure only (never on an answer, whatever its status). */
  async get(path: string, query?: Record<string, string>, retries = this.getRetries): Promise<EnclaveReply> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send("GET", withQuery(path, query), { kind: "none" });
      } catch (e) {
        if (!(e instanceof EnclaveUnavailableError) || attempt >= retries) throw e;
        await sleep(this.retryBaseMs * 2 ** attempt);
      }
    }
  }

  async postJson(path: string, body: unknown): Promise<EnclaveReply> {
    return this.send("POST", path, { kind: "json", bytes: Buffer.from(JSON.stringify(body)) });
  }

  /** POST a file's bytes as they are read; `size` is sent as Content-Length. */
  async postStream(
    path: string,
    query: Record<string, string>,
    stream: Readable,
    size: number,
  ): Promise<EnclaveReply> {
    return this.send("POST", withQuery(path, query), { kind: "stream", stream, size });
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, payload: Payload): Promise<EnclaveReply> {
    const headers: Record<string, string | number> = { accept: "application/json" };
    if (payload.kind === "json") {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.bytes.length;
    } else if (payload.kind === "stream") {
      headers["content-type"] = "application/octet-stream";
      headers["content-length"] = payload.size;
    }
    const address = this.opts.address;
    // An fd socket's destination lives in its agent; "localhost" only fills the Host header.
    const target =
      "socketPath" in address
        ? { socketPath: address.socketPath }
        : "host" in address
          ? { host: address.host, port: address.port }
          : { host: "localhost" };
    return new Promise<EnclaveReply>((resolve, reject) => {
      let settled = false;
      const done = (err: unknown, reply?: EnclaveReply) => {
        if (settled) return;
        settled = true;
        // The enclave may answer (e.g. refuse) before it has read the whole upload: stop reading it.
        if (payload.kind === "stream") payload.stream.destroy();
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(reply!);
      };
      const req = http.request({
        ...target,
        method,
        path,
        headers,
        agent: this.agent,
        timeout: this.idleTimeoutMs,
      });
      req.on("timeout", () => done(new EnclaveTimeoutError()));
      req.on("error", (e) => done(new EnclaveUnavailableError({ cause: e })));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) done(new EnclaveProtocolError("enclave answer too large"));
          else chunks.push(chunk);
        });
        res.on("error", (e) => done(new EnclaveUnavailableError({ cause: e })));
        res.on("aborted", () => done(new EnclaveUnavailableError()));
        res.on("end", () => {
          try {
            done(null, {
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
            });
          } catch {
            done(new EnclaveProtocolError());
          }
        });
      });
      if (payload.kind === "stream") {
        payload.stream.on("error", (e) => done(e));
        payload.stream.pipe(req);
      } else {
        req.end(payload.kind === "json" ? payload.bytes : undefined);
      }
    });
  }
}

function withQuery(path: string, query?: Record<string, string>): string {
  return query ? `${path}?${new URLSearchParams(query).toString()}` : path;
}

/**
 * The body of a 2xx answer, which must be a JSON object. A refusal with the §7 error shape
 * ({code, message, detail?}) becomes EnclaveRejectedError (relayed with its status and detail);
 * anything else is EnclaveProtocolError.
 */
export function expectOk(reply: EnclaveReply): Record<string, unknown> {
  const body = reply.body;
  const isObject = typeof body === "object" && body !== null && !Array.isArray(body);
  if (reply.status >= 200 && reply.status < 300) {
    if (isObject) return body as Record<string, unknown>;
    throw new EnclaveProtocolError();
  }
  const error = isObject ? (body as { error?: unknown }).error : undefined;
  if (typeof error === "object" && error !== null) {
    const { code, message, detail } = error as { code?: unknown; message?: unknown; detail?: unknown };
    if (
      typeof code === "string" &&
      /^ERR_[A-Z0-9_]{1,64}$/.test(code) &&
      typeof message === "string" &&
      message.length <= 256 &&
      (detail === undefined || isSealedDetail(detail)) &&
      reply.status >= 400 &&
      reply.status < 600
    ) {
      throw new EnclaveRejectedError(reply.status, code, message, detail);
    }
  }
  throw new EnclaveProtocolError();
}

/** Largest sealed detail relayed (a detail plaintext is 2 KiB; its age file, base64, far less than this). */
const MAX_DETAIL_CHARS = 16 * 1024;

/** A refusal's `detail`: base64 of an age file for the party, relayed as it came. */
function isSealedDetail(v: unknown): v is string {
  return typeof v === "string" && v.length <= MAX_DETAIL_CHARS && /^[A-Za-z0-9+/]+={0,2}$/.test(v);
}
