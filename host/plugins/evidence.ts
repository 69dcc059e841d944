import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorResponses } from "../http-errors.js";
import { NONCE_HEX } from "../ids.js";

const schema = {
  operationId: "getEvidence",
  tags: ["evidence"],
  summary: "the enclave's attestation evidence for the caller's nonce (PROTOCOL.md §6)",
  querystring: {
    type: "object",
    required: ["nonce"],
    additionalProperties: false,
    properties: { nonce: { type: "string", pattern: NONCE_HEX } },
  },
  response: {
    200: {
      type: "object",
      description: "the enclave's evidence bundle, relayed unchanged",
      additionalProperties: true,
      properties: { platform: { type: "string" }, nonce: { type: "string" } },
    },
    ...errorResponses,
  },
} as const;

export const evidencePlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave }) => {
  app.get<{ Querystring: { nonce: string } }>("/evidence", { schema }, async (request) =>
    expectOk(await enclave.get("/v1/evidence", { nonce: request.query.nonce })),
  );
};
