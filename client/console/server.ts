/**
 * The console's local web server: the party's own CLI process serves the page (files shipped in
 * the package, built by scripts/build-console.ts) and a JSON API on 127.0.0.1 only. The page never
 * talks to the clean room host: this process does, with the partner SDK, and keeps the keys.
 *
 * What keeps other local pages and sites out:
 * - a per-launch token (32 random bytes), given in the URL's fragment (never sent in a request or
 *   a Referer) and required as `Authorization: Bearer` on every API call; another origin cannot
 *   send that header without a CORS preflight, which this server never answers;
 * - the Host header must name this server (127.0.0.1 or localhost and its port): a DNS-rebound
 *   name is refused; an Origin header, when present, must be this server's;
 * - a Content-Security-Policy allowing scripts, styles and connections to this origin only (no
 *   inline script or style, no other origin), no framing, no forms, no referrer.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ConsoleNotFoundError,
  ConsoleOriginError,
  ConsoleRequestError,
  ConsoleTokenError,
} from "./errors.js";
import { errorBody } from "./http-errors.js";
import type { ConsoleSession } from "./session.js";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=(), payment=()",
  "cache-control": "no-store",
};

/** The asset types served, by extension (an allow-list: nothing else is read or served). */
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Request bodies are small JSON documents (an approval is the largest). */
const MAX_BODY_BYTES = 64 * 1024;

/** Where the built page lives beside this module (dist/client/console/assets). */
export function defaultAssetsDir(): string {
  return fileURLToPath(new URL("./assets/", import.meta.url));
}

export interface ConsoleServerOptions {
  session: ConsoleSession;
  /** 0 (default): a free port. */
  port?: number;
  assetsDir?: string;
}

export interface ConsoleServer {
  /** The address to open: the origin, with the token in the fragment. */
  url: string;
  origin: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

type Handler = (s: ConsoleSession, params: string[], body: Record<string, unknown>) => Promise<unknown>;

interface Route {
  method: string;
  path: RegExp;
  handler: Handler;
  /** The answer is a file to download (this media type), not JSON. */
  file?: string;
}

const ID = "([0-9a-f]{24}|[0-9a-f]{32})";

const ROUTES: Route[] = [
  { method: "GET", path: /^\/api\/session$/, handler: async (s) => s.session() },
  { method: "GET", path: /^\/api\/attestation$/, handler: (s) => s.attestation() },
  { method: "POST", path: /^\/api\/attestation$/, handler: (s) => s.attest() },
  { method: "GET", path: /^\/api\/contract$/, handler: (s) => s.contractView() },
  { method: "POST", path: /^\/api\/contract\/sign$/, handler: (s, _p, b) => s.sign(b.digest) },
  { method: "POST", path: /^\/api\/contract\/approvals$/, handler: (s, _p, b) => s.addApproval(b.approval) },
  { method: "POST", path: /^\/api\/contract\/submit$/, handler: (s) => s.submit() },
  { method: "GET", path: /^\/api\/files$/, handler: (s) => s.files() },
  { method: "GET", path: /^\/api\/data$/, handler: (s) => s.dataView() },
  { method: "POST", path: /^\/api\/check$/, handler: (s, _p, b) => s.check(b.dataset, b.file) },
  { method: "POST", path: /^\/api\/uploads$/, handler: (s, _p, b) => s.startUpload(b.dataset, b.file) },
  {
    method: "POST",
    path: /^\/api\/grants$/,
    handler: (s, _p, b) => s.startGrant(b.dataset, b.digest, b.previous, b.mode),
  },
  { method: "GET", path: /^\/api\/queries$/, handler: (s) => s.queriesView() },
  { method: "POST", path: /^\/api\/runs$/, handler: (s, _p, b) => s.startQuery(b.queryId, b.params) },
  { method: "GET", path: new RegExp(`^/api/jobs/${ID}$`), handler: async (s, p) => s.jobs.get(p[0]!) },
  { method: "DELETE", path: new RegExp(`^/api/jobs/${ID}$`), handler: (s, p) => s.jobs.cancel(p[0]!) },
  { method: "GET", path: /^\/api\/results$/, handler: (s) => s.resultsList() },
  { method: "GET", path: new RegExp(`^/api/results/${ID}$`), handler: (s, p) => s.result(p[0]) },
  {
    method: "GET",
    path: new RegExp(`^/api/results/${ID}/csv$`),
    handler: (s, p) => s.resultCsv(p[0]),
    file: "text/csv; charset=utf-8",
  },
  {
    method: "GET",
    path: new RegExp(`^/api/results/${ID}/parquet$`),
    handler: (s, p) => s.resultParquet(p[0]),
    file: "application/vnd.apache.parquet",
  },
  { method: "GET", path: /^\/api\/audit$/, handler: (s) => s.auditView() },
];

/** The built page's files, read once at start (a few hundred KB). */
function loadAssets(dir: string): Map<string, { type: string; bytes: Buffer }> {
  const out = new Map<string, { type: string; bytes: Buffer }>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new ConsoleNotFoundError(
      `the console's page is not built (no ${dir}); run npm run build in the package folder`,
    );
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type) out.set(name, { type, bytes: readFileSync(join(dir, name)) });
  }
  if (!out.has("index.html")) {
    throw new ConsoleNotFoundError(
      `the console's page is not built (no index.html in ${dir}); run npm run build`,
    );
  }
  return out;
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": type,
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value));
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ConsoleRequestError("request body too large");
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) {
    throw new ConsoleRequestError("request body must be application/json");
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ConsoleRequestError("request body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ConsoleRequestError("request body must be a JSON object");
  return v as Record<string, unknown>;
}

export async function startConsoleServer(o: ConsoleServerOptions): Promise<ConsoleServer> {
  const assets = loadAssets(o.assetsDir ?? defaultAssetsDir());
  const token = randomBytes(32).toString("base64url");
  const expected = Buffer.from(`Bearer ${token}`);
  let port = 0;
  const hosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const origins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);

  const authorised = (req: IncomingMessage): boolean => {
    const given = Buffer.from(req.headers.authorization ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hosts().has(req.headers.host ?? ""))
      throw new ConsoleOriginError("this console answers only at 127.0.0.1");
    const origin = req.headers.origin;
    if (origin !== undefined && !origins().has(origin)) {
      throw new ConsoleOriginError("requests from other origins are refused");
    }
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    const path = url.pathname;
    if (!path.startsWith("/api/")) {
      if (req.method !== "GET" && req.method !== "HEAD") throw new ConsoleNotFoundError(`no page ${path}`);
      const name =
        path === "/" ? "index.html" : path.startsWith("/assets/") ? path.slice("/assets/".length) : "";
      const asset = assets.get(name);
      if (!asset) throw new ConsoleNotFoundError(`no page ${path}`);
      send(res, 200, asset.type, asset.bytes);
      return;
    }
    if (!authorised(req)) {
      throw new ConsoleTokenError(
        "this console's token is missing or wrong: open the address the console printed",
      );
    }
    for (const route of ROUTES) {
      if (route.method !== req.method) continue;
      const m = route.path.exec(path);
      if (!m) continue;
      const body = req.method === "POST" ? await readBody(req) : {};
      const value = await route.handler(o.session, m.slice(1), body);
      if (route.file) send(res, 200, route.file, Buffer.from(value as Uint8Array));
      else sendJson(res, 200, value);
      return;
    }
    throw new ConsoleNotFoundError(`no API ${req.method} ${path}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const { status, error } = errorBody(e);
      if (status === 500)
        process.stderr.write(`console: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}\n`);
      if (!res.headersSent) sendJson(res, status, { error });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const originUrl = `http://127.0.0.1:${port}`;
  return {
    url: `${originUrl}/#token=${token}`,
    origin: originUrl,
    port,
    token,
    async close() {
      await o.session.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
