import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findVcek, type VcekCache, vcekCacheKey } from "../../attestation/snp/endorsement.js";
import { verifySnp } from "../../attestation/snp/index.js";
import { parseReport } from "../../attestation/snp/report.js";
import { directoryVcekCache } from "../../attestation/snp/vcek-cache-node.js";
import { registerVerifyCommand } from "../../client/cli/commands/verify.js";
import { runCli } from "../cli/run.js";
import { loadVector } from "./vectors.js";

const v = loadVector("milan-oak-v3");

function fakeKds(der: Uint8Array) {
  const urls: string[] = [];
  const fetch = async (url: string) => {
    urls.push(url);
    return { ok: true, arrayBuffer: async () => der.slice().buffer };
  };
  return { urls, fetch };
}

function memoryCache(): VcekCache & { map: Map<string, Uint8Array> } {
  const map = new Map<string, Uint8Array>();
  return { map, get: async (k) => map.get(k), put: async (k, d) => void map.set(k, d) };
}

describe("finding a VCEK that did not come with the evidence", () => {
  it("fetches it from the KDS URL of the report's chip and TCB, caches it, and it verifies", async () => {
    const kds = fakeKds(v.leaf);
    const cache = memoryCache();
    const vcek = await findVcek(v.report, { cache, fetch: kds.fetch });
    const r = parseReport(v.report);
    expect(kds.urls).toEqual([`https://kdsintf.amd.com${vcekCacheKey("Milan", r.chipId, r.reportedTcb)}`]);
    expect(kds.urls[0]).toMatch(/^https:\/\/kdsintf\.amd\.com\/vcek\/v1\/Milan\/[0-9a-f]{128}\?blSPL=/);
    const result = await verifySnp({ report: v.report, vcek }, { at: v.at });
    expect(result.verified).toBe(true);
    // The second lookup is served from the cache: no request.
    await findVcek(v.report, { cache, fetch: kds.fetch });
    expect(kds.urls).toHaveLength(1);
  });

  it("never reaches the network unless a fetch function is given", async () => {
    await expect(findVcek(v.report, { cache: memoryCache() })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });

  it("a KDS answer that is not a certificate is refused", async () => {
    const kds = fakeKds(new TextEncoder().encode("<html>"));
    await expect(findVcek(v.report, { fetch: kds.fetch })).rejects.toMatchObject({ code: "ERR_KDS" });
  });

  it("a certificate for another chip, fetched or cached, fails verification", async () => {
    const other = loadVector("genoa-oak-v5");
    const vcek = await findVcek(v.report, { fetch: fakeKds(other.leaf).fetch });
    expect((await verifySnp({ report: v.report, vcek }, { at: v.at })).verified).toBe(false);
  });

  it("cleanroom verify --vcek-cache finds the VCEK in a directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vcek-cache-"));
    const r = parseReport(v.report);
    await directoryVcekCache(dir).put(vcekCacheKey("Milan", r.chipId, r.reportedTcb), v.leaf);
    const out = await runCli(registerVerifyCommand, [
      "verify",
      `${v.dir}report.bin`,
      "--vcek-cache",
      dir,
      "--at",
      v.at.toISOString(),
    ]);
    expect(out.stdout).toMatch(/VERIFIED/);
    expect(out.code).toBe(0);
    const empty = mkdtempSync(join(tmpdir(), "vcek-cache-"));
    const miss = await runCli(registerVerifyCommand, ["verify", `${v.dir}report.bin`, "--vcek-cache", empty]);
    expect(miss.code).toBe(2);
    expect(miss.stderr).toMatch(/ERR_USAGE/);
  });
});
