/**
 * One mapping from errors to the §7/§8 error body `{"error":{"code","message","detail"?}}`.
 * Messages are the fixed texts of our error classes (or the enclave's fixed text per code when
 * relaying its refusal, with its sealed `detail` for the requesting party, opaque here and never
 * logged); framework and parser messages, which can quote input, never reach a client or a log.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isCleanroomError } from "../attestation/errors.js";
import { EnclaveRejectedError } from "./errors.js";

export const errorBodySchema = {
  $id: "HostError",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        detail: {
          type: "string",
          description:
            "an enclave refusal's own words and names (row, column, parameter, dataset), signed by the enclave and age-encrypted to the party whose request failed (base64); PROTOCOL.md §7",
        },
      },
    },
    grant: { $ref: "EnclaveAnswer#" },
  },
} as const;

/** Response schema entries every route shares: its errors. */
export const errorResponses = {
  "4xx": {
    description: "refused: the request, a limit, or the enclave's refusal relayed",
    $ref: "HostError#",
  },
  "5xx": { description: "the host or the enclave failed or is unreachable", $ref: "HostError#" },
} as const;

const STATUS_BY_CODE: Record<string, number> = {
  ERR_ENCLAVE_UNAVAILABLE: 503,
  ERR_ENCLAVE_TIMEOUT: 504,
  ERR_ENCLAVE_PROTOCOL: 502,
  ERR_AUDIT_CONTINUITY: 502,
  ERR_AUDIT_RESTORE_FAILED: 503,
  ERR_DIGEST_MISMATCH: 400,
  ERR_BAD_ID: 400,
  ERR_TOO_LARGE: 413,
  ERR_STORE_FULL: 507,
  ERR_NOT_FOUND: 404,
  ERR_RATE_LIMITED: 429,
  ERR_UPLOAD_OFFSET: 409,
  ERR_UPLOAD_CONFLICT: 409,
};

/** Fastify's own failures, by their FST_ code, as [status, code, fixed message]. */
const FRAMEWORK: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "ERR_MALFORMED_JSON", "body is not valid JSON"],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "ERR_MALFORMED_JSON", "body is empty"],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "ERR_TOO_LARGE", "body too large"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, "ERR_BAD_REQUEST", "content length mismatch"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "ERR_MEDIA_TYPE", "unsupported content type"],
};

export interface ErrorReply {
  status: number;
  code: string;
  message: string;
  detail?: string;
}

export function errorReply(err: unknown): ErrorReply {
  if (err instanceof EnclaveRejectedError) {
    return {
      status: err.status,
      code: err.enclaveCode,
      message: err.enclaveMessage,
      ...(err.detail !== undefined ? { detail: err.detail } : {}),
    };
  }
  if (isCleanroomError(err)) {
    return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code, message: err.message };
  }
  const fe = err as Partial<FastifyError>;
  if (fe.validation) {
    return {
      status: 400,
      code: "ERR_VALIDATION",
      message: `${fe.validationContext ?? "request"} does not match its schema`,
    };
  }
  const known = fe.code ? FRAMEWORK[fe.code] : undefined;
  if (known) return { status: known[0], code: known[1], message: known[2] };
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: "ERR_BAD_REQUEST", message: "bad request" };
  }
  return { status: 500, code: "ERR_INTERNAL", message: "internal error" };
}

/** Log a refusal by its code only (an internal error also by its stack) and answer it. */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: unknown,
  extra?: Record<string, unknown>,
): FastifyReply {
  const r = errorReply(err);
  if (r.code === "ERR_INTERNAL") {
    // Only the error's identity and stack frames: messages of foreign errors may quote input.
    const e = err as { name?: string; code?: string; stack?: string };
    const frames = e.stack?.split("\n").slice(1).join("\n");
    request.log.error({ errName: e.name, errCode: e.code, frames }, "internal error");
  } else {
    request.log.info({ errCode: r.code, status: r.status }, "request refused");
  }
  const error = { code: r.code, message: r.message, ...(r.detail !== undefined ? { detail: r.detail } : {}) };
  return reply.code(r.status).send({ error, ...extra });
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendError(request, reply, err),
  );
  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({ error: { code: "ERR_NOT_FOUND", message: "no such route" } });
  });
}
