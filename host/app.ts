/**
 * The untrusted host (PROTOCOL.md §8): a fastify server that faces the network, keeps
 * ciphertext on disk and relays opaque envelopes to the enclave. It holds no key and sees no
 * plaintext; every feature is a plugin under /api/v1 with its schemas beside its handler.
 */

import type http from "node:http";
import type https from "node:https";
import helmet from "@fastify/helmet";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import Fastify, {
  type FastifyHttpsOptions,
  type FastifyInstance,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import type { DestinationStream } from "pino";
import { AuditSync } from "./audit-sync.js";
import type { HostDeps } from "./deps.js";
import { type EnclaveAddress, EnclaveClient } from "./enclave-client.js";
import { RateLimitedError } from "./errors.js";
import { installErrorHandlers, sendError } from "./http-errors.js";
import { isLoopbackAddress } from "./net.js";
import { auditPlugin } from "./plugins/audit.js";
import { blobsPlugin } from "./plugins/blobs.js";
import { contractPlugin } from "./plugins/contract.js";
import { evidencePlugin } from "./plugins/evidence.js";
import { grantsPlugin } from "./plugins/grants.js";
import { healthPlugin } from "./plugins/health.js";
import { queriesPlugin } from "./plugins/queries.js";
import { resultsPlugin } from "./plugins/results.js";
import { resultListingPlugin } from "./routes-results.js";
import { sharedSchemas } from "./schemas.js";
import { openHostStore } from "./store.js";

export const API_PREFIX = "/api/v1";

export interface HostLimits {
  /** JSON request bodies. Default 2 MiB: a contract alone may be 1 MiB (§1), plus its approvals. */
  jsonBodyBytes?: number;
  /** One uploaded blob. Default 64 GiB. */
  maxBlobBytes?: number;
  /** Resumable uploads untouched this long are removed when the host starts. Default 7 days. */
  partialUploadTtlMs?: number;
  /** Client socket inactivity before it is closed. Default 60 s. */
  connectionTimeoutMs?: number;
  /** Time for a client to send its request headers (slow-loris guard). Default 20 s. */
  headersTimeoutMs?: number;
  /** Idle keep-alive connections. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Enclave socket inactivity. Default 120 s. */
  enclaveIdleTimeoutMs?: number;
  /** Extra attempts for enclave GETs whose connection failed. Default 2. */
  enclaveGetRetries?: number;
  /** First retry delay, doubling. Default 100 ms. */
  enclaveRetryBaseMs?: number;
  /** Largest enclave answer. Default 512 MiB. */
  enclaveResponseBytes?: number;
}

export interface HostRateLimit {
  /** Requests per window per client address. Default 600. */
  max?: number;
  /** Requests per window for loopback clients (local CLI, tests). Default 100 000. */
  loopbackMax?: number;
  /** Window length. Default 60 s. */
  timeWindowMs?: number;
}

export interface HostOptions {
  enclave: EnclaveAddress;
  storeDir: string;
  /** false: silent; true or an object: pino JSON logs (to `stream`, default stdout). */
  logger?: boolean | { level?: string; stream?: DestinationStream };
  tls?: { cert: string | Buffer; key: string | Buffer };
  limits?: HostLimits;
  /** false turns rate limiting off. */
  rateLimit?: false | HostRateLimit;
}

function loggerOptions(logger: HostOptions["logger"]): FastifyServerOptions["logger"] {
  if (logger === false || logger === undefined) return false;
  const { level = "info", stream } = logger === true ? {} : logger;
  return {
    level,
    ...(stream ? { stream } : {}),
    // Requests and replies are logged only through the hook below; these are belts and braces
    // for any other code that logs a request or reply object.
    serializers: {
      req: (req: { method?: string }) => ({ method: req.method }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
    redact: {
      paths: ["body", "*.body", "jwe", "*.jwe", "response", "*.response", "headers"],
      censor: "[redacted]",
    },
  };
}

/**
 * Node enforces headersTimeout only when it sweeps connections, every 30 s by default, so a
 * slow-loris client could hold a socket up to 30 s past the limit; sweep every second instead.
 */
const CONNECTION_SWEEP = { connectionsCheckingInterval: 1_000 };

export async function buildHost(opts: HostOptions): Promise<FastifyInstance> {
  const limits = opts.limits ?? {};
  const base: FastifyServerOptions & { http?: http.ServerOptions } = {
    logger: loggerOptions(opts.logger),
    // Fastify's own per-request lines carry the URL and headers; ours (onResponse below) do not.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.jsonBodyBytes ?? 2 * 1024 ** 2,
    connectionTimeout: limits.connectionTimeoutMs ?? 60_000,
    keepAliveTimeout: limits.keepAliveTimeoutMs ?? 5_000,
    // A whole-request deadline would cut long blob uploads; idle and header timeouts bound slow clients.
    requestTimeout: 0,
    return503OnClosing: true,
    // Closed field sets (PROTOCOL.md): an unknown field is refused, never silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // Router refusals (over-long path parameter, undecodable URL) bypass the error handler and
    // would answer fastify's own body, which quotes the URL: give them ours.
    frameworkErrors: (err, request, reply) => sendError(request, reply, err),
    http: CONNECTION_SWEEP,
  };
  const app = (opts.tls
    ? Fastify<https.Server>({
        ...base,
        https: { cert: opts.tls.cert, key: opts.tls.key, ...CONNECTION_SWEEP },
      } as FastifyHttpsOptions<https.Server>)
    : Fastify(base)) as unknown as FastifyInstance;
  app.server.headersTimeout = limits.headersTimeoutMs ?? 20_000;

  const store = await openHostStore(opts.storeDir, {
    maxBlobBytes: limits.maxBlobBytes,
    partialTtlMs: limits.partialUploadTtlMs,
  });
  const enclave = new EnclaveClient({
    address: opts.enclave,
    idleTimeoutMs: limits.enclaveIdleTimeoutMs,
    getRetries: limits.enclaveGetRetries,
    retryBaseMs: limits.enclaveRetryBaseMs,
    maxResponseBytes: limits.enclaveResponseBytes,
  });
  const deps: HostDeps = { enclave, store, audit: new AuditSync(enclave, store.audit, app.log, store.guard) };
  app.addHook("onClose", async () => enclave.close());

  installErrorHandlers(app);
  // No contract reaches a restarted enclave that did not take the stored audit log: it would
  // start over with privacy budgets and run counts reset (audit-sync.ts).
  app.addHook("preHandler", async (request) => {
    if (request.method === "POST" && request.routeOptions.url === `${API_PREFIX}/contract`) {
      await deps.audit.requireRestored();
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? "(none)",
        status: reply.statusCode,
        reqBytes: Number(request.headers["content-length"] ?? 0),
        resBytes: Number(reply.getHeader("content-length") ?? 0),
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  await app.register(helmet);
  if (opts.rateLimit !== false) {
    const rl = opts.rateLimit ?? {};
    await app.register(rateLimit, {
      max: (_request, key) => (isLoopbackAddress(key) ? (rl.loopbackMax ?? 100_000) : (rl.max ?? 600)),
      timeWindow: rl.timeWindowMs ?? 60_000,
      errorResponseBuilder: () => new RateLimitedError(),
    });
  }
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "clean room host",
        description:
          "Untrusted relay and ciphertext store (PROTOCOL.md §8). The host authenticates nobody: " +
          "every request that matters is signed by a contract party and encrypted to the attested " +
          "enclave, which checks it; blobs are named by their SHA-256 and results are encrypted " +
          "to their recipients.",
        version: "1",
        license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
      },
      // Relative: the document is served by the host it describes, at whatever origin that is.
      servers: [{ url: "/", description: "this host" }],
      // No transport authentication, on purpose (see the description): an explicit empty requirement.
      security: [{}],
      tags: [
        { name: "health", description: "liveness and readiness" },
        { name: "evidence", description: "the enclave's attestation evidence" },
        { name: "contract", description: "the contract and its approvals" },
        { name: "blobs", description: "uploaded age files, stored by SHA-256" },
        { name: "grants", description: "key grants and dataset loads" },
        { name: "queries", description: "query runs" },
        { name: "results", description: "encrypted query results" },
        { name: "audit", description: "the enclave's signed audit log" },
      ],
    },
    // Components keep the $id of the shared schemas instead of fastify-swagger's "def-N".
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === "string" ? json.$id : `schema-${i}`,
    },
  });
  for (const schema of sharedSchemas) app.addSchema(schema);

  const features = [
    healthPlugin,
    evidencePlugin,
    contractPlugin,
    blobsPlugin,
    grantsPlugin,
    queriesPlugin,
    resultsPlugin,
    resultListingPlugin,
    auditPlugin,
  ];
  for (const plugin of features) await app.register(plugin, { prefix: API_PREFIX, ...deps });

  app.get(`${API_PREFIX}/openapi.json`, { schema: { hide: true } }, async () => app.swagger());
  return app;
}
