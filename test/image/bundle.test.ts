import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bundleEnclave, bundleInit } from "../../scripts/image/bundle.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const digest = (files: { path: string; data: Uint8Array }[]) =>
  files.map((f) => `${f.path} ${createHash("sha256").update(f.data).digest("hex")}`);

describe("enclave and init bundles", () => {
  it("are identical when built twice and carry no build path", async () => {
    const [a, b] = [await bundleEnclave(repo), await bundleEnclave(repo)];
    expect(digest(b)).toEqual(digest(a));
    expect(a.map((f) => f.path)).toContain("main.js");
    const [i1, i2] = [await bundleInit(repo), await bundleInit(repo)];
    expect(i2).toEqual(i1);
    const text = new TextDecoder();
    for (const f of [...a.map((x) => x.data), i1])
      expect(text.decode(f)).not.toContain(repo.replace(/\/$/, ""));
    expect(text.decode(i1).startsWith("#!/usr/bin/node\n")).toBe(true);
  });
});
