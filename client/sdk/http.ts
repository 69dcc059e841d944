/**
 * The untrusted host's HTTP API (docs/PROTOCOL.md §8) over fetch, so it runs in Node and
 * browsers. Nothing here trusts what comes back: callers verify signatures and digests.
 */
import { HostError, HostResponseError, IoError } from "./errors.js";

export interface HostClientOptions {
  /** Per-request timeout for control calls, default 30 s. Blob transfers use `transferTimeoutMs`. */
  timeoutMs?: number;
  /** Timeout for blob uploads and result downloads; default none (they may be large). */
  transferTimeoutMs?: number;
  fetch?: typeof fetch;
}

const API = "/api/v1";

export class HostClient {
  readonly baseUrl: string;
  readonly #timeoutMs: number;
  readonly #transferTimeoutMs: number | undefined;
  readonly #fetch: typeof fetch;

  /** `url` is the host's origin, with or without the `/api/v1` prefix. */
  constructor(url: string, options: HostClientOptions = {}) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new IoError("host url is not a URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:")
      throw new IoError("host url must be http(s)");
    const path = base.pathname.replace(/\/+$/, "");
    this.baseUrl = `${base.origin}${path.endsWith(API) ? path : `${path}${API}`}`;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#transferTimeoutMs = options.transferTimeoutMs;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async #request(
    path: string,
    init: RequestInit & { duplex?: "half" },
    timeoutMs?: number,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.#fetch(`${this.baseUrl}${path}`, {
        ...init,
        ...(timeoutMs !== undefined ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
      });
    } catch (cause) {
      throw new IoError("host unreachable or timed out", { cause });
    }
    if (!res.ok && res.status !== 404) throw await hostError(res);
    return res;
  }

  async getJson<T = unknown>(path: string): Promise<T> {
    const res = await this.#request(path, { method: "GET" }, this.#timeoutMs);
    if (res.status === 404) throw await hostError(res);
    return readJson<T>(res);
  }

  async postJson<T = unknown>(path: string, body: unknown): Promise<T> {
    const res = await this.#request(
      path,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
      this.#timeoutMs,
    );
    if (res.status === 404) throw await hostError(res);
    return readJson<T>(res);
  }

  async getBytes(path: string): Promise<Uint8Array> {
    const res = await this.#request(path, { method: "GET" }, this.#transferTimeoutMs);
    if (res.status === 404) throw await hostError(res);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (cause) {
      throw new IoError("download interrupted", { cause });
    }
  }

  /** True when the host already stores the blob (HEAD 200), false on 404. */
  async hasBlob(sha256Hex: string): Promise<boolean> {
    const res = await this.#request(`/blobs/${sha256Hex}`, { method: "HEAD" }, this.#timeoutMs);
    await res.body?.cancel();
    return res.status !== 404;
  }

  /** Streams an age file into the content-addressed store under its SHA-256. */
  async putBlob(
    sha256Hex: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    length?: number,
  ): Promise<void> {
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (length !== undefined) headers["content-length"] = String(length);
    const res = await this.#request(
      `/blobs/${sha256Hex}`,
      { method: "PUT", headers, body: body as BodyInit, duplex: "half" },
      this.#transferTimeoutMs,
    );
    if (res.status === 404) throw await hostError(res);
    await res.body?.cancel();
  }
}

async function readJson<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new HostResponseError("host answer is not JSON");
  }
}

async function hostError(res: Response): Promise<HostError> {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string" && /^ERR_[A-Z0-9_]{1,64}$/.test(body.error.code)) {
      code = body.error.code;
    }
    if (typeof body?.error?.message === "string") message = body.error.message.slice(0, 200);
  } catch {
    // A body that is not the protocol's error document: the status alone is reported.
  }
  return new HostError(res.status, code, message);
}
