import { Readable } from "node:stream";
import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorResponses, sendError } from "../http-errors.js";
import { DATASET_ID, SHA256_HEX } from "../ids.js";
import { jweSchema } from "../schemas.js";

const schema = {
  operationId: "grantDataset",
  tags: ["grants"],
  summary: "relay a key grant, then stream the granted blob to the enclave's ingest",
  description:
    "On an ingest failure the error body also carries `grant`, the enclave's signed answer to the grant.",
  body: {
    type: "object",
    required: ["jwe", "dataset", "digest"],
    additionalProperties: false,
    properties: {
      jwe: { ...jweSchema, description: "signed grant request inside a JWE to the enclave" },
      dataset: { type: "string", pattern: DATASET_ID },
      digest: { type: "string", pattern: SHA256_HEX, description: "id of a stored blob" },
    },
  },
  response: {
    200: {
      description: "the enclave's signed answers to the grant and to the load",
      type: "object",
      required: ["grant", "ingest"],
      properties: { grant: { $ref: "EnclaveAnswer#" }, ingest: { $ref: "EnclaveAnswer#" } },
    },
    ...errorResponses,
  },
} as const;

const progressSchema = {
  operationId: "getLoadProgress",
  tags: ["grants"],
  summary: "how far the load of a granted blob got: ciphertext bytes the enclave received, rows loaded",
  querystring: {
    type: "object",
    required: ["dataset", "digest"],
    additionalProperties: false,
    properties: {
      dataset: { type: "string", pattern: DATASET_ID },
      digest: { type: "string", pattern: SHA256_HEX, description: "the granted blob" },
    },
  },
  response: {
    200: {
      description: "`loading` is false when no load of that blob is in progress",
      type: "object",
      required: ["loading"],
      properties: {
        loading: { type: "boolean" },
        version: { type: "integer", minimum: 1, description: "the version the load will make" },
        bytes: { type: "integer", minimum: 0 },
        total: { type: "integer", minimum: 0, description: "the blob's size" },
        rows: { type: "integer", minimum: 0 },
      },
    },
    ...errorResponses,
  },
} as const;

type Body = { Body: { jwe: string; dataset: string; digest: string } };
type Progress = { Querystring: { dataset: string; digest: string } };

/** One load in progress as the enclave reports it (GET /v1/loads); anything else is ignored. */
interface EnclaveLoad {
  dataset?: unknown;
  ciphertextDigest?: unknown;
  version?: unknown;
  bytes?: unknown;
  rows?: unknown;
}

const count = (v: unknown): number => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : 0);

export const grantsPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave, store, audit }) => {
  app.post<Body>("/grants", { schema }, async (request, reply) => {
    const { jwe, dataset, digest } = request.body;
    // A load takes as long as the file: no inactivity limit on this connection while it runs
    // (the client polls GET /grants/progress meanwhile). The server's limit returns afterwards.
    const socket = request.raw.socket as { setTimeout?: (ms: number) => unknown } | undefined;
    // (app.inject's requests have no real socket.)
    if (typeof socket?.setTimeout === "function") {
      socket.setTimeout(0);
      reply.raw.once("finish", () => socket.setTimeout?.(app.server.timeout));
    }
    // Refuse before the enclave sees the grant if there is nothing to stream to it afterwards.
    const blob = await store.blobs.read(digest);
    try {
      let grant: Record<string, unknown>;
      try {
        grant = expectOk(await enclave.postJson("/v1/requests", { jwe }));
      } catch (e) {
        blob.stream.destroy();
        throw e;
      }
      try {
        const path = `/v1/datasets/${encodeURIComponent(dataset)}/ingest`;
        // A grant repeating a load is answered with that load's answer: nothing to stream.
        const repeat = grant.repeat === true;
        if (repeat) blob.stream.destroy();
        const body = repeat ? Readable.from([]) : blob.stream;
        const ingest = expectOk(await enclave.postStream(path, { digest }, body, repeat ? 0 : blob.size));
        return { grant, ingest };
      } catch (e) {
        return sendError(request, reply, e, { grant });
      }
    } finally {
      await audit.sync();
    }
  });

  app.get<Progress>("/grants/progress", { schema: progressSchema }, async (request) => {
    const { dataset, digest } = request.query;
    const { loads } = expectOk(await enclave.get("/v1/loads")) as { loads?: unknown };
    const load = (Array.isArray(loads) ? (loads as EnclaveLoad[]) : []).find(
      (l) => l?.dataset === dataset && l.ciphertextDigest === digest,
    );
    if (!load) return { loading: false };
    return {
      loading: true,
      version: Math.max(1, count(load.version)),
      bytes: count(load.bytes),
      total: (await store.blobs.size(digest)) ?? 0,
      rows: count(load.rows),
    };
  });
};
