import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { HostDeps } from "../deps.js";
import { TooLargeError } from "../errors.js";
import { errorResponses } from "../http-errors.js";
import { SHA256_HEX } from "../ids.js";

const params = {
  type: "object",
  required: ["sha256"],
  additionalProperties: false,
  properties: {
    sha256: { type: "string", pattern: SHA256_HEX, description: "SHA-256 of the blob, lowercase hex" },
  },
} as const;

/**
 * The body is the raw request stream, read by the store (never buffered or parsed): declared for
 * the OpenAPI document only. The validator sees no parsed body, so the schema accepts none.
 */
const octetBody = (description: string) =>
  ({
    description,
    content: {
      "application/octet-stream": {
        schema: { type: "string", format: "binary", nullable: true, description: "an age file's bytes" },
      },
    },
  }) as const;

const stored = {
  $id: "StoredBlob",
  type: "object",
  description: "a blob the host stores",
  required: ["digest", "size", "created"],
  properties: {
    digest: { type: "string", pattern: SHA256_HEX },
    size: { type: "integer", minimum: 0 },
    created: { type: "boolean", description: "false when the blob was stored already" },
  },
} as const;

const uploadStatus = {
  $id: "UploadStatus",
  type: "object",
  description: "how much of a blob the host holds",
  required: ["digest", "offset", "length", "complete"],
  properties: {
    digest: { type: "string", pattern: SHA256_HEX },
    offset: { type: "integer", minimum: 0, description: "bytes held: where the next append starts" },
    length: {
      type: "integer",
      minimum: 1,
      nullable: true,
      description: "the length the upload was started with; null before any append",
    },
    complete: { type: "boolean", description: "true once the whole blob is stored" },
    created: { type: "boolean", description: "true when this request completed the blob" },
  },
} as const;

const putSchema = {
  operationId: "putBlob",
  summary: "store an age file under its SHA-256 in one request (idempotent)",
  tags: ["blobs"],
  params,
  body: octetBody("the whole age file"),
  response: {
    200: { description: "already stored; the body was not read", $ref: "StoredBlob#" },
    201: { description: "stored", $ref: "StoredBlob#" },
    ...errorResponses,
  },
} as const;

const headSchema = {
  operationId: "headBlob",
  summary: "whether a blob is stored (200 with its Content-Length) or not (404)",
  tags: ["blobs"],
  params,
  response: {
    200: { description: "stored; Content-Length is its size", type: "null" },
    404: { description: "not stored", type: "null" },
  },
} as const;

const statusSchema = {
  operationId: "getUploadStatus",
  summary: "how much of a resumable upload the host holds",
  description: "An upload that was interrupted resumes with PATCH at `offset`.",
  tags: ["blobs"],
  params,
  response: { 200: { description: "the upload's state", $ref: "UploadStatus#" }, ...errorResponses },
} as const;

const patchSchema = {
  operationId: "appendBlob",
  summary: "append to a resumable upload; the blob is stored once `length` bytes hash to its name",
  description:
    "`offset` must equal what the host holds (409 ERR_UPLOAD_OFFSET otherwise: ask again and resume). " +
    "Bytes received before a dropped connection are kept. The last append checks the SHA-256 " +
    "(400 ERR_DIGEST_MISMATCH drops the partial upload).",
  tags: ["blobs"],
  params,
  querystring: {
    type: "object",
    required: ["offset", "length"],
    additionalProperties: false,
    properties: {
      offset: { type: "integer", minimum: 0, description: "where these bytes start in the blob" },
      length: { type: "integer", minimum: 1, description: "the whole blob's length" },
    },
  },
  body: octetBody("the blob's bytes from `offset` on (all or part of the rest)"),
  response: {
    200: { description: "appended; `complete` tells whether the blob is now stored", $ref: "UploadStatus#" },
    ...errorResponses,
  },
} as const;

type Params = { Params: { sha256: string } };
type Patch = Params & { Querystring: { offset: number; length: number } };

/**
 * How long the rest of an upload the host does not store is read and dropped after answering.
 * Closing a connection with bytes still unread resets it, and the reset can take the answer with
 * it: the client would see a cut answer instead of the refusal (a full store, a stale offset). A
 * client that has the answer stops sending; one that does not is cut off after this.
 */
const DROP_REST_MS = 2_000;

/** Once the answer is out, the request's remaining bytes are read and dropped, for a while. */
function dropRest(request: FastifyRequest, reply: FastifyReply): void {
  const body = request.raw;
  if (body.readableEnded) return;
  reply.raw.once("finish", () => {
    const cutOff = setTimeout(() => body.socket.destroy(), DROP_REST_MS);
    cutOff.unref();
    body.once("close", () => clearTimeout(cutOff));
    body.resume();
  });
}

export const blobsPlugin: FastifyPluginAsync<HostDeps> = async (app, { store }) => {
  app.addSchema(stored);
  app.addSchema(uploadStatus);
  // The body is the raw request stream, read by the store; fastify never buffers it.
  app.addContentTypeParser("application/octet-stream", (_request, _payload, done) => done(null, undefined));

  app.put<Params>("/blobs/:sha256", { schema: putSchema }, async (request, reply) => {
    const { sha256 } = request.params;
    try {
      const declared = Number(request.headers["content-length"] ?? 0);
      if (declared > store.blobs.maxBlobBytes) throw new TooLargeError("blob too large");
      const { created, size } = await store.blobs.put(sha256, request.raw);
      // Already stored: the upload was not read; the answer tells the client to stop sending.
      dropRest(request, reply);
      return reply.code(created ? 201 : 200).send({ digest: sha256, size, created });
    } catch (e) {
      dropRest(request, reply);
      throw e;
    }
  });

  // Declared on purpose (not fastify's implicit HEAD of a GET), so it belongs in the OpenAPI document.
  const headConfig = { swagger: { exposeHeadRoute: true } };
  app.head<Params>("/blobs/:sha256", { schema: headSchema, config: headConfig }, async (request, reply) => {
    const size = await store.blobs.size(request.params.sha256);
    if (size === null) return reply.code(404).send();
    return reply
      .code(200)
      .header("content-length", size)
      .header("content-type", "application/octet-stream")
      .send();
  });

  app.get<Params>("/blobs/:sha256/upload", { schema: statusSchema }, async (request) => ({
    digest: request.params.sha256,
    ...(await store.blobs.uploadStatus(request.params.sha256)),
  }));

  app.patch<Patch>("/blobs/:sha256", { schema: patchSchema }, async (request, reply) => {
    const { sha256 } = request.params;
    const { offset, length } = request.query;
    try {
      const status = await store.blobs.append(sha256, offset, length, request.raw);
      dropRest(request, reply);
      return { digest: sha256, ...status };
    } catch (e) {
      dropRest(request, reply);
      throw e;
    }
  });
};
