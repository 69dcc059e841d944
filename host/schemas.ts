/**
 * JSON schema pieces shared by the feature plugins. Shapes are checked only as far as the host
 * needs to relay them (compact JOSE syntax, id patterns); meaning is checked end to end by the
 * enclave and the parties. Relayed enclave answers keep every field (additionalProperties).
 */
import { errorBodySchema } from "./http-errors.js";
import { PARTY_ID, RESULT_ID } from "./ids.js";

const B64URL = "[A-Za-z0-9_-]";
export const jwsSchema = { type: "string", pattern: `^${B64URL}+\\.${B64URL}*\\.${B64URL}+$` } as const;
export const jweSchema = {
  type: "string",
  pattern: `^${B64URL}+\\.${B64URL}*\\.${B64URL}+\\.${B64URL}+\\.${B64URL}+$`,
} as const;

export const sharedSchemas = [
  errorBodySchema,
  {
    $id: "EnclaveAnswer",
    type: "object",
    description: "an enclave answer relayed unchanged (PROTOCOL.md §7)",
    additionalProperties: true,
  },
  {
    $id: "StoredRun",
    type: "object",
    description:
      "a query run as the host stores it: the enclave's signed answer (verified by the parties, not the host), its recipients, and when the host stored it",
    required: ["id", "response", "recipients", "created"],
    additionalProperties: false,
    properties: {
      id: { type: "string", pattern: RESULT_ID },
      response: jwsSchema,
      recipients: { type: "array", items: { type: "string", pattern: PARTY_ID } },
      created: { type: "string", format: "date-time" },
    },
  },
  {
    $id: "AuditHead",
    type: "object",
    required: ["seq", "hash"],
    properties: { seq: { type: "integer", minimum: 0 }, hash: { type: "string", pattern: "^[0-9a-f]{64}$" } },
  },
] as const;
