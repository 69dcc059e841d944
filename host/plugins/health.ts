import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorReply, errorResponses } from "../http-errors.js";

const schema = {
  summary: "host liveness and the enclave's health",
  response: {
    200: {
      type: "object",
      required: ["ok", "enclave"],
      properties: {
        ok: { type: "boolean", description: "true when the host is up and the enclave answered" },
        enclave: {
          type: "object",
          required: ["reachable"],
          properties: {
            reachable: { type: "boolean" },
            health: { $ref: "EnclaveAnswer#" },
            error: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } },
          },
        },
      },
    },
    ...errorResponses,
  },
} as const;

/** Always 200 while the host runs, so a liveness probe does not restart it for the enclave's sake. */
export const healthPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave }) => {
  app.get("/health", { schema }, async () => {
    try {
      const health = expectOk(await enclave.get("/v1/health", undefined, 0));
      return { ok: true, enclave: { reachable: true, health } };
    } catch (e) {
      const { code, message } = errorReply(e);
      return { ok: false, enclave: { reachable: false, error: { code, message } } };
    }
  });
};
