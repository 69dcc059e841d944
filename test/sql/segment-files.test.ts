import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SegmentFiles } from "../../enclave/sql/segment-files.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cleanroom-segments-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (text: string) => new TextEncoder().encode(text);

describe("SegmentFiles", () => {
  it("gives each segment its own path, reuses read files, and holds exactly the segment", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.string({ maxLength: 40 }), { maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        async (segments) => {
          const files = new SegmentFiles(dir, "s");
          const seen = new Set<string>();
          for (const [i, parts] of segments.entries()) {
            const path = await files.write(i, parts.map(bytes));
            expect(seen.has(path)).toBe(false);
            seen.add(path);
            expect(readFileSync(path, "utf8")).toBe(parts.join(""));
            expect(statSync(path).mode & 0o777).toBe(0o600);
            // One read file is recycled by the next write: never more than two at a time.
            expect(readdirSync(dir).length).toBeLessThanOrEqual(2);
            files.release(path);
          }
          await files.removeAll();
          expect(readdirSync(dir)).toEqual([]);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("never overwrites a segment that has not been released", async () => {
    const files = new SegmentFiles(dir, "s");
    const a = await files.write(0, [bytes("first")]);
    const b = await files.write(1, [bytes("second")]);
    expect(readFileSync(a, "utf8")).toBe("first");
    files.release(a);
    const c = await files.write(2, [bytes("3")]);
    expect(existsSync(a)).toBe(false);
    expect([readFileSync(b, "utf8"), readFileSync(c, "utf8")]).toEqual(["second", "3"]);
    await files.removeAll();
    expect(readdirSync(dir)).toEqual([]);
  });
});
