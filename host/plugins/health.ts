import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { errorReply, errorResponses } from "../http-errors.js";

const enclaveState = {
  $id: "EnclaveReachability",
  type: "object",
  description: "whether the enclave answered its health check, and its answer or the refusal",
  required: ["reachable"],
  properties: {
    reachable: { type: "boolean" },
    health: { $ref: "EnclaveAnswer#" },
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
  },
} as const;

const healthSchema = {
  operationId: "getHealth",
  tags: ["health"],
  summary: "host liveness and the enclave's health in one answer (always 200 while the host runs)",
  response: {
    200: {
      description: "`ok` is true when the enclave answered too",
      type: "object",
      required: ["ok", "enclave"],
      properties: {
        ok: { type: "boolean", description: "true when the host is up and the enclave answered" },
        enclave: { $ref: "EnclaveReachability#" },
      },
    },
    ...errorResponses,
  },
} as const;

const liveSchema = {
  operationId: "getLiveness",
  tags: ["health"],
  summary: "liveness: 200 while the host process serves requests; it never asks the enclave",
  response: {
    200: {
      description: "the host is alive",
      type: "object",
      required: ["live"],
      properties: { live: { type: "boolean", enum: [true] } },
    },
    ...errorResponses,
  },
} as const;

const readySchema = {
  operationId: "getReadiness",
  tags: ["health"],
  summary: "readiness: 200 when the enclave answers through this host, 503 otherwise",
  response: {
    200: {
      description: "ready to relay",
      type: "object",
      required: ["ready", "enclave"],
      properties: { ready: { type: "boolean", enum: [true] }, enclave: { $ref: "EnclaveReachability#" } },
    },
    503: {
      description: "not ready: the enclave does not answer (its error says why)",
      type: "object",
      required: ["ready", "enclave"],
      properties: { ready: { type: "boolean", enum: [false] }, enclave: { $ref: "EnclaveReachability#" } },
    },
    "4xx": errorResponses["4xx"],
  },
} as const;

/**
 * Liveness never depends on the enclave, so a probe does not restart the host for the enclave's
 * sake; readiness does, so a load balancer sends partners only to a host that can relay.
 */
export const healthPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave }) => {
  app.addSchema(enclaveState);
  const probe = async () => {
    try {
      // No retries: a probe answers now, and the next probe is the retry.
      return { reachable: true, health: expectOk(await enclave.get("/v1/health", undefined, 0)) };
    } catch (e) {
      const { code, message } = errorReply(e);
      return { reachable: false, error: { code, message } };
    }
  };

  app.get("/health", { schema: healthSchema }, async () => {
    const state = await probe();
    return { ok: state.reachable, enclave: state };
  });

  app.get("/health/live", { schema: liveSchema }, async () => ({ live: true }));

  app.get("/health/ready", { schema: readySchema }, async (_request, reply) => {
    const state = await probe();
    return reply.code(state.reachable ? 200 : 503).send({ ready: state.reachable, enclave: state });
  });
};
