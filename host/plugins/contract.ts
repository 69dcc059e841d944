import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorResponses } from "../http-errors.js";
import { jwsSchema } from "../schemas.js";

const getSchema = {
  operationId: "getContract",
  tags: ["contract"],
  summary: "the contract the enclave holds, with its approvals and digest",
  response: {
    200: {
      description: "the active contract",
      type: "object",
      additionalProperties: true,
      properties: { digest: { type: "string" }, approvals: { type: "array", items: { type: "string" } } },
    },
    ...errorResponses,
  },
} as const;

const postSchema = {
  operationId: "submitContract",
  tags: ["contract"],
  summary: "give the enclave a contract and every party's approval",
  body: {
    type: "object",
    required: ["contract", "approvals"],
    additionalProperties: false,
    properties: {
      contract: { type: "object", description: "validated by the enclave, not the host" },
      approvals: { type: "array", minItems: 1, maxItems: 32, items: jwsSchema },
    },
  },
  response: {
    200: {
      description: "accepted: the enclave's signed answer",
      type: "object",
      required: ["response"],
      additionalProperties: true,
      properties: { response: jwsSchema },
    },
    ...errorResponses,
  },
} as const;

/** Pure relay: the host keeps no contract state of its own. */
export const contractPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave, audit }) => {
  app.get("/contract", { schema: getSchema }, async () => expectOk(await enclave.get("/v1/contract")));

  app.post<{ Body: { contract: object; approvals: string[] } }>(
    "/contract",
    { schema: postSchema },
    async (request) => {
      // A restarted enclave gets the stored audit log before it takes the contract.
      await audit.sync();
      try {
        return expectOk(await enclave.postJson("/v1/contract", request.body));
      } finally {
        await audit.sync();
      }
    },
  );
};
