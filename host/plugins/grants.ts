import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorResponses, sendError } from "../http-errors.js";
import { DATASET_ID, SHA256_HEX } from "../ids.js";
import { jweSchema } from "../schemas.js";

const schema = {
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
      type: "object",
      required: ["grant", "ingest"],
      properties: { grant: { $ref: "EnclaveAnswer#" }, ingest: { $ref: "EnclaveAnswer#" } },
    },
    ...errorResponses,
  },
} as const;

type Body = { Body: { jwe: string; dataset: string; digest: string } };

export const grantsPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave, store, audit }) => {
  app.post<Body>("/grants", { schema }, async (request, reply) => {
    const { jwe, dataset, digest } = request.body;
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
        const ingest = expectOk(await enclave.postStream(path, { digest }, blob.stream, blob.size));
        return { grant, ingest };
      } catch (e) {
        return sendError(request, reply, e, { grant });
      }
    } finally {
      await audit.sync();
    }
  });
};
