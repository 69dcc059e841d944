/**
 * The verification and encryption parts of the SDK must run in a browser: bundling them for the
 * browser platform fails on any Node-only import (node:fs, node:crypto, Buffer-only APIs).
 */
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const entries = ["client/sdk/index.ts", "attestation/evidence.ts", "attestation/measure/snp.ts"];

describe("browser bundle", () => {
  it.each(entries)("%s bundles for the browser with no Node built-ins", async (entry) => {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
      metafile: true,
    });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.some((i) => i.startsWith("node:"))).toBe(false);
    expect(out.outputFiles[0]!.text.length).toBeGreaterThan(10_000);
  });

  it("the Node-only part is refused, so the check has teeth", async () => {
    const bundle = build({
      entryPoints: ["client/node/index.ts"],
      bundle: true,
      platform: "browser",
      write: false,
      logLevel: "silent",
    });
    // Refused for the Node built-ins it imports, not for some other build error.
    await expect(bundle).rejects.toThrow(/Could not resolve "node:/);
  });
});
