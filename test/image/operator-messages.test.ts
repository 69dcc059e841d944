/** What build:image says it leaves out, and the boot test without QEMU. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { leftOut } from "../../scripts/image/summary.js";

describe("build:image", () => {
  it("says it leaves out the SEV-SNP measurement without --ovmf, and the platforms not asked for", () => {
    expect(leftOut({ platforms: ["sim", "sev-snp", "nitro"], ovmf: true })).toEqual([]);
    const all = leftOut({ platforms: ["sim", "sev-snp", "nitro"], ovmf: false });
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(/^no SEV-SNP launch measurement: --ovmf .* rebuild with --ovmf/);
    const some = leftOut({ platforms: ["sev-snp"], ovmf: true });
    expect(some).toEqual([
      "no sim kernel command line (sim not in --platforms)",
      "no Nitro EIF and no PCRs (nitro not in --platforms)",
    ]);
  });
});

describe("scripts/image/boot-test.sh", () => {
  it("without QEMU says what to install, starts nothing and exits 3", () => {
    // A PATH with nothing on it: bash itself is run by its absolute path.
    const empty = mkdtempSync(join(tmpdir(), "no-tools-"));
    try {
      const bash = spawnSync("sh", ["-c", "command -v bash"], { encoding: "utf8" }).stdout.trim();
      const r = spawnSync(bash, ["scripts/image/boot-test.sh", "dist/image"], {
        encoding: "utf8",
        env: { PATH: empty },
      });
      expect(r.status).toBe(3);
      expect(r.stderr).toBe(
        "boot-test: qemu-system-x86_64 not found: install it (Debian: apt-get install qemu-system-x86 curl) to boot the image; nothing was started\n",
      );
      expect(r.stdout).toBe("");
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
