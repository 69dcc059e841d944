import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CpioEntry, normaliseEntries, writeCpio } from "../../scripts/image/cpio.js";

/** An independent newc reader for the tests (field layout from the kernel's initramfs docs). */
function readNewc(b: Uint8Array) {
  const text = new TextDecoder("latin1");
  const out: {
    name: string;
    mode: number;
    uid: number;
    gid: number;
    mtime: number;
    ino: number;
    rdev: [number, number];
    data: Uint8Array;
  }[] = [];
  let off = 0;
  for (;;) {
    const h = text.decode(b.subarray(off, off + 110));
    expect(h.slice(0, 6)).toBe("070701");
    const f = (i: number) => Number.parseInt(h.slice(6 + 8 * i, 14 + 8 * i), 16);
    const nameSize = f(11);
    const name = text.decode(b.subarray(off + 110, off + 110 + nameSize - 1));
    expect(b[off + 110 + nameSize - 1]).toBe(0);
    off += 110 + nameSize;
    off += (4 - (off % 4)) % 4;
    const data = b.subarray(off, off + f(6));
    off += f(6);
    off += (4 - (off % 4)) % 4;
    if (name === "TRAILER!!!") {
      expect(off).toBe(b.length);
      return out;
    }
    out.push({ name, ino: f(0), mode: f(1), uid: f(2), gid: f(3), mtime: f(5), rdev: [f(9), f(10)], data });
  }
}

const enc = new TextEncoder();

describe("newc cpio writer", () => {
  const entries: CpioEntry[] = [
    { path: "opt/app/main.js", type: "file", data: enc.encode("console.log(1)\n") },
    { path: "/init", type: "symlink", target: "/opt/app/main.js" },
    { path: "usr/bin/node", type: "file", data: new Uint8Array([1, 2, 3]), mode: 0o755 },
    { path: "dev/console", type: "chardev", major: 5, minor: 1 },
  ];

  it("writes sorted entries with parents, root owners, the given mtime and 4-byte alignment", () => {
    const files = readNewc(writeCpio(entries, 1_700_000_000));
    expect(files.map((f) => f.name)).toEqual([
      "dev",
      "dev/console",
      "init",
      "opt",
      "opt/app",
      "opt/app/main.js",
      "usr",
      "usr/bin",
      "usr/bin/node",
    ]);
    for (const [i, f] of files.entries()) {
      expect([f.uid, f.gid, f.mtime, f.ino]).toEqual([0, 0, 1_700_000_000, i + 1]);
    }
    const byName = new Map(files.map((f) => [f.name, f]));
    expect(byName.get("usr/bin/node")!.mode).toBe(0o100755);
    expect([...byName.get("usr/bin/node")!.data]).toEqual([1, 2, 3]);
    expect(byName.get("opt/app")!.mode).toBe(0o040755);
    expect(byName.get("init")!.mode).toBe(0o120777);
    expect(new TextDecoder().decode(byName.get("init")!.data)).toBe("/opt/app/main.js");
    expect(byName.get("dev/console")!.mode).toBe(0o020600);
    expect(byName.get("dev/console")!.rdev).toEqual([5, 1]);
    expect(byName.get("opt/app/main.js")!.mode).toBe(0o100644);
  });

  it("refuses duplicate paths, '..', and a file used as a directory", () => {
    const f = (path: string): CpioEntry => ({ path, type: "file", data: new Uint8Array() });
    expect(() => writeCpio([f("a"), f("/a")], 0)).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
    expect(() => writeCpio([f("a/../b")], 0)).toThrow(expect.objectContaining({ code: "ERR_IMAGE_BUILD" }));
    expect(() => writeCpio([f("a"), f("a/b")], 0)).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
    expect(() => writeCpio([f("a")], -1)).toThrow(expect.objectContaining({ code: "ERR_IMAGE_BUILD" }));
  });

  it("gives the same bytes whatever the input order (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z]{1,3}(\/[a-z]{1,3}){0,2}$/), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.nat(),
        (paths, mtime, seed) => {
          // Leaves only: a path that is also another's parent would be a directory.
          const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(`${p}/`)));
          const list: CpioEntry[] = leaves.map((p) => ({ path: p, type: "file", data: enc.encode(p) }));
          const shuffled = [...list].sort(
            (a, b) => ((a.path.length * 31 + seed) % 7) - ((b.path.length * 31 + seed) % 7),
          );
          const a = writeCpio(list, mtime);
          expect(writeCpio(shuffled, mtime)).toEqual(a);
          expect(
            readNewc(a)
              .filter((e) => e.data.length > 0 && (e.mode & 0o170000) === 0o100000)
              .map((e) => e.name),
          ).toEqual([...leaves].sort());
        },
      ),
    );
  });

  it("sorts bytewise, not by locale", () => {
    const sorted = normaliseEntries([
      { path: "b", type: "dir" },
      { path: "B", type: "dir" },
      { path: "a", type: "dir" },
    ]).map((e) => e.path);
    expect(sorted).toEqual(["B", "a", "b"]);
  });
});
