/**
 * The host's OpenAPI document under Redocly's "recommended-strict" ruleset (warnings are errors),
 * plus what that ruleset does not check: named component schemas, a real description on every
 * response, and a request body on every route that takes one.
 */
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHost, type TestHost } from "./helpers.js";

let host: TestHost;
let doc: {
  servers?: unknown[];
  security?: unknown[];
  components: { schemas: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
};
interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  requestBody?: unknown;
  responses: Record<string, { description?: string }>;
}

beforeAll(async () => {
  // Nothing listens on port 9: the document does not need the enclave.
  host = await startHost({ host: "127.0.0.1", port: 9 });
  doc = (await host.app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json();
});
afterAll(async () => host.close());

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, method, op })),
  );

describe("OpenAPI document", () => {
  it("has no problem under Redocly's recommended-strict ruleset", async () => {
    const config = await createConfig({ extends: ["recommended-strict"] });
    const problems = await lintFromString({
      source: JSON.stringify(doc),
      absoluteRef: "openapi.json",
      config,
    });
    expect(problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
  });

  it("names its schemas, describes every response and declares every request body", () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    expect(doc.security).toBeDefined();
    const names = Object.keys(doc.components.schemas);
    expect(names).toEqual(expect.arrayContaining(["HostError", "AuditHead", "UploadStatus", "StoredBlob"]));
    expect(names.filter((n) => /^def-\d+$/.test(n))).toEqual([]);
    const ids = new Set<string>();
    for (const { where, method, op } of operations()) {
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+(-head)?$/);
      expect(ids.has(op.operationId!), `${where}: duplicate operationId`).toBe(false);
      ids.add(op.operationId!);
      expect(op.tags?.length, where).toBeGreaterThan(0);
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.description, `${where} ${status}`).toBeTruthy();
        expect(response.description, `${where} ${status}`).not.toBe("Default Response");
      }
      if (["put", "post", "patch"].includes(method)) expect(op.requestBody, where).toBeDefined();
    }
    expect(ids).toEqual(expect.objectContaining({ size: operations().length }));
    for (const id of ["putBlob", "appendBlob", "getUploadStatus", "getLiveness", "getReadiness"]) {
      expect([...ids], id).toContain(id);
    }
  });
});
