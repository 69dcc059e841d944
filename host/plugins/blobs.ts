import type { FastifyPluginAsync } from "fastify";
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

const stored = {
  type: "object",
  required: ["digest", "size", "created"],
  properties: { digest: { type: "string" }, size: { type: "integer" }, created: { type: "boolean" } },
} as const;

const putSchema = {
  summary: "store an age file under its SHA-256 (idempotent)",
  consumes: ["application/octet-stream"],
  params,
  response: { 200: stored, 201: stored, ...errorResponses },
} as const;

const headSchema = {
  summary: "whether a blob is stored (200 with its Content-Length) or not (404)",
  params,
  response: { 200: { type: "null" }, 404: { type: "null" } },
} as const;

type Params = { Params: { sha256: string } };

export const blobsPlugin: FastifyPluginAsync<HostDeps> = async (app, { store }) => {
  // The body is the raw request stream, read by the store; fastify never buffers it.
  app.addContentTypeParser("application/octet-stream", (_request, _payload, done) => done(null, undefined));

  app.put<Params>("/blobs/:sha256", { schema: putSchema }, async (request, reply) => {
    const { sha256 } = request.params;
    try {
      const declared = Number(request.headers["content-length"] ?? 0);
      if (declared > store.blobs.maxBlobBytes) throw new TooLargeError("blob too large");
      const { created, size } = await store.blobs.put(sha256, request.raw);
      // Already stored: the upload was not read, so do not make the client send the rest of it.
      if (!request.raw.readableEnded) reply.header("connection", "close");
      return reply.code(created ? 201 : 200).send({ digest: sha256, size, created });
    } catch (e) {
      // The rest of a refused upload is not read: close the connection after answering.
      reply.header("connection", "close");
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
};
