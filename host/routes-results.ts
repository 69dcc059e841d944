/**
 * GET /results?party=P: the query runs the host keeps a result for P of, newest first, so that
 * every recipient (not only the party that ran the query) finds its results. What it lists is what
 * GET /audit already shows to anyone (each run's query, requester and recipients); the results
 * themselves stay age-encrypted to their recipients, and each party verifies the signed answers.
 */
import type { FastifyPluginAsync } from "fastify";
import type { HostDeps } from "./deps.js";
import { errorResponses } from "./http-errors.js";
import { PARTY_ID } from "./ids.js";

/** Runs listed at most per request, and by default. */
export const MAX_LISTED_RUNS = 1000;
export const DEFAULT_LISTED_RUNS = 100;

const listSchema = {
  operationId: "listResults",
  tags: ["results"],
  summary: "the query runs with a result for one party, newest first",
  querystring: {
    type: "object",
    required: ["party"],
    additionalProperties: false,
    properties: {
      party: { type: "string", pattern: PARTY_ID, description: "a party id of the contract" },
      limit: {
        type: "integer",
        minimum: 1,
        maximum: MAX_LISTED_RUNS,
        default: DEFAULT_LISTED_RUNS,
        description: "runs listed at most",
      },
    },
  },
  response: {
    200: {
      description: "the runs, newest first",
      type: "object",
      required: ["results"],
      additionalProperties: false,
      properties: { results: { type: "array", items: { $ref: "StoredRun#" } } },
    },
    ...errorResponses,
  },
} as const;

export const resultListingPlugin: FastifyPluginAsync<HostDeps> = async (app, { store }) => {
  app.get<{ Querystring: { party: string; limit: number } }>(
    "/results",
    { schema: listSchema },
    async (request) => ({
      results: await store.results.listFor(request.query.party, request.query.limit),
    }),
  );
};
