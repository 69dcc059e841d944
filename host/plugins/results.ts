import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { errorResponses } from "../http-errors.js";
import { PARTY_ID, RESULT_ID } from "../ids.js";
import { jwsSchema } from "../schemas.js";

const id = { type: "string", pattern: RESULT_ID } as const;

const metaSchema = {
  operationId: "getResult",
  tags: ["results"],
  summary: "a query run's signed enclave response and its recipients",
  params: { type: "object", required: ["id"], additionalProperties: false, properties: { id } },
  response: {
    200: {
      description: "the stored run",
      type: "object",
      required: ["id", "response", "recipients"],
      properties: { id, response: jwsSchema, recipients: { type: "array", items: { type: "string" } } },
    },
    ...errorResponses,
  },
} as const;

const fileSchema = {
  operationId: "getResultFile",
  tags: ["results"],
  summary: "one recipient's age-encrypted result",
  produces: ["application/octet-stream"],
  params: {
    type: "object",
    required: ["id", "party"],
    additionalProperties: false,
    properties: { id, party: { type: "string", pattern: PARTY_ID } },
  },
  response: {
    200: { description: "the age file", type: "string", format: "binary" },
    ...errorResponses,
  },
} as const;

export const resultsPlugin: FastifyPluginAsync<HostDeps> = async (app, { store }) => {
  app.get<{ Params: { id: string } }>("/results/:id", { schema: metaSchema }, async (request) =>
    store.results.meta(request.params.id),
  );

  app.get<{ Params: { id: string; party: string } }>(
    "/results/:id/:party",
    { schema: fileSchema },
    async (request, reply) => {
      const file = await store.results.read(request.params.id, request.params.party);
      return reply.type("application/octet-stream").header("content-length", file.size).send(file.stream);
    },
  );
};
