import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "../deps.js";
import { expectOk } from "../enclave-client.js";
import { EnclaveProtocolError } from "../errors.js";
import { errorResponses } from "../http-errors.js";
import { PARTY_ID, RESULT_ID } from "../ids.js";
import { jweSchema, jwsSchema } from "../schemas.js";

const schema = {
  operationId: "runQuery",
  tags: ["queries"],
  summary: "relay a signed query request; keep each recipient's encrypted result",
  body: {
    type: "object",
    required: ["jwe"],
    additionalProperties: false,
    properties: { jwe: { ...jweSchema, description: "signed query request inside a JWE to the enclave" } },
  },
  response: {
    200: {
      description: "the run's result id, the enclave's signed answer and the result recipients",
      type: "object",
      required: ["id", "response", "recipients"],
      properties: {
        id: { type: "string", pattern: RESULT_ID },
        response: jwsSchema,
        recipients: { type: "array", items: { type: "string", pattern: PARTY_ID } },
      },
    },
    ...errorResponses,
  },
} as const;

const partyRe = new RegExp(PARTY_ID);
const base64Re = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** `results: {party: base64 age}` from the enclave's answer, decoded; absent means none. */
function decodeResults(results: unknown): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (results === undefined) return out;
  if (typeof results !== "object" || results === null || Array.isArray(results))
    throw new EnclaveProtocolError();
  for (const [party, b64] of Object.entries(results)) {
    if (!partyRe.test(party) || typeof b64 !== "string" || !base64Re.test(b64))
      throw new EnclaveProtocolError();
    out.set(party, Buffer.from(b64, "base64"));
  }
  return out;
}

export const queriesPlugin: FastifyPluginAsync<HostDeps> = async (app, { enclave, store, audit }) => {
  app.post<{ Body: { jwe: string } }>("/queries", { schema }, async (request) => {
    try {
      const answer = expectOk(await enclave.postJson("/v1/requests", { jwe: request.body.jwe }));
      if (typeof answer.response !== "string") throw new EnclaveProtocolError();
      // Kept before the audit sync: a restore hands back every history the chain names.
      if (answer.sealedHistory !== undefined) await store.guard.save(answer.sealedHistory);
      return await store.results.save(answer.response, decodeResults(answer.results));
    } finally {
      await audit.sync();
    }
  });
};
