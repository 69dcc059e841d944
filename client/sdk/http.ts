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

  /** `long`: the call may take as long as a transfer (a grant's load): `transferTimeoutMs` applies. */
  async postJson<T = unknown>(path: string, body: unknown, options: { long?: boolean } = {}): Promise<T> {
    const res = await this.#request(
      path,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
      options.long ? this.#transferTimeoutMs : this.#timeoutMs,
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

  /** How much of a resumable upload the host holds (GET /blobs/{sha256}/upload). */
  uploadStatus(sha256Hex: string): Promise<UploadStatus> {
    return this.getJson<UploadStatus>(`/blobs/${sha256Hex}/upload`);
  }
}

/** What the host holds of a blob (docs/PROTOCOL.md §8, resumable uploads). */
export interface UploadStatus {
  offset: number;
  length: number | null;
  complete: boolean;
}

async function readJson<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new HostResponseError("host answer is not JSON");
  }
}

/** A sealed detail larger than this is not one the enclave made (its plaintext is 2 KiB). */
const MAX_DETAIL_CHARS = 16 * 1024;

/**
 * The protocol's error document as a HostError; a sealed `detail` is kept as it came, to be
 * opened by the party that sent the request (`openHostError`, in CleanroomClient.send).
 */
async function hostError(res: Response): Promise<HostError> {
  let code: string | undefined;
  let message: string | undefined;
  let sealedDetail: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown; detail?: unknown } };
    if (typeof body?.error?.code === "string" && /^ERR_[A-Z0-9_]{1,64}$/.test(body.error.code)) {
      code = body.error.code;
    }
    if (typeof body?.error?.message === "string") message = body.error.message.slice(0, 200);
    const detail = body?.error?.detail;
    if (typeof detail === "string" && detail.length <= MAX_DETAIL_CHARS) sealedDetail = detail;
  } catch {
    // A body that is not the protocol's error document: the status alone is reported.
  }
  return new HostError(res.status, code, message, sealedDetail !== undefined ? { sealedDetail } : {});
}
