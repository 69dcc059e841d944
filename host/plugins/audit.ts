import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { errorResponses } from "../http-errors.js";
import { jwsSchema } from "../schemas.js";

const schema = {
  operationId: "getAudit",
  tags: ["audit"],
  summary: "the audit log entries the host has stored, from seq `from` (default 1)",
  querystring: {
    type: "object",
    additionalProperties: false,
    properties: { from: { type: "integer", minimum: 1 } },
  },
  response: {
    200: {
      description: "entries as compact JWS, and the head of the stored log",
      type: "object",
      required: ["entries", "head"],
      properties: { entries: { type: "array", items: jwsSchema }, head: { $ref: "AuditHead#" } },
    },
    ...errorResponses,
  },
} as const;

export const auditPlugin: FastifyPluginAsync<HostDeps> = async (app, { store, audit }) => {
  app.get<{ Querystring: { from?: number } }>("/audit", { schema }, async (request) => {
    // Best effort: with the enclave down, the stored copy is still served.
    await audit.sync();
    return store.audit.list(request.query.from);
  });
};
