/** The expected image from a release manifest or a simulated platform's expected.json (--manifest). */

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { evidencePolicy } from "../../client/cli/options.js";
import { expectedImageOf } from "../../client/node/manifest.js";

const hex = (c: string) => c.repeat(96);

describe("--manifest", () => {
  it("reads a release manifest's SEV-SNP measurement and Nitro PCRs", () => {
    const manifest = {
      schema: "cleanroom-image-manifest/1",
      images: {
        "sev-snp": { sevSnp: { measurement: hex("a") } },
        nitro: { pcrs: { PCR0: hex("0"), PCR1: hex("1"), PCR2: hex("2") } },
      },
    };
    expect(expectedImageOf(manifest, "m.json")).toEqual({
      measurements: [hex("a")],
      pcrs: { 0: hex("0"), 1: hex("1"), 2: hex("2") },
    });
  });

  it("reads a simulated platform's expected.json", () => {
    expect(
      expectedImageOf({ measurement: hex("b"), pcrs: { 0: hex("0"), 1: hex("1"), 2: hex("2") } }, "e.json"),
    ).toEqual({
      measurements: [hex("b")],
      pcrs: { 0: hex("0"), 1: hex("1"), 2: hex("2") },
    });
  });

  it("refuses a manifest that pins nothing, and anything else, naming the file", () => {
    expect(() =>
      expectedImageOf({ schema: "cleanroom-image-manifest/1", images: { "sev-snp": {} } }, "m.json"),
    ).toThrow(
      "--manifest m.json: the release manifest names no SEV-SNP measurement and no Nitro PCRs (built without --ovmf or --eif?)",
    );
    expect(() => expectedImageOf({ measurement: "short" }, "x.json")).toThrow(
      /^--manifest x\.json: neither a release manifest/,
    );
  });

  it("pins the policy like --measurement and --pcr would; explicit --pcr wins", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cleanroom-manifest-"));
    try {
      await writeFile(
        join(dir, "e.json"),
        JSON.stringify({ measurement: hex("c"), pcrs: { 0: hex("0"), 1: hex("1"), 2: hex("2") } }),
      );
      const base = { measurement: [hex("d")], pcr: [], trustSimRoot: [] };
      const policy = await evidencePolicy({ ...base, manifest: join(dir, "e.json") });
      expect(policy.measurements).toEqual([hex("d"), hex("c")]);
      expect(policy.pcrs).toEqual({ 0: hex("0"), 1: hex("1"), 2: hex("2") });
      const own = await evidencePolicy({
        ...base,
        manifest: join(dir, "e.json"),
        pcr: [`0=${hex("e")}`, `1=${hex("e")}`, `2=${hex("e")}`],
      });
      expect(own.pcrs).toEqual({ 0: hex("e"), 1: hex("e"), 2: hex("e") });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
