/**
 * A deterministic writer of "newc" cpio archives (the format the Linux kernel unpacks as an
 * initramfs). Everything that would make two builds differ is fixed here: entries are sorted by
 * path, missing parent directories are added, owners are root, inode numbers count up from 1 in
 * that order, and every mtime is the one value passed in (SOURCE_DATE_EPOCH).
 */
import { ImageBuildError } from "./errors.js";

export type CpioEntry =
  | { path: string; type: "dir"; mode?: number }
  | { path: string; type: "file"; data: Uint8Array; mode?: number }
  | { path: string; type: "symlink"; target: string }
  /** Device nodes the kernel needs before devtmpfs is mounted (/dev/console for init's stdio). */
  | { path: string; type: "chardev"; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const NEWC_MAGIC = "070701";
const HEADER_SIZE = 110;
const TRAILER = "TRAILER!!!";
/** newc stores sizes and times as 8 hex digits. */
const MAX_FIELD = 0xffff_ffff;

function normalise(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) throw new ImageBuildError("cpio: invalid entry path");
  return parts.join("/");
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  nameSize: number;
  rdevMajor?: number;
  rdevMinor?: number;
}): string {
  // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  return [
    NEWC_MAGIC,
    hex8(fields.ino),
    hex8(fields.mode),
    hex8(0),
    hex8(0),
    hex8(fields.nlink),
    hex8(fields.mtime),
    hex8(fields.size),
    hex8(0),
    hex8(0),
    hex8(fields.rdevMajor ?? 0),
    hex8(fields.rdevMinor ?? 0),
    hex8(fields.nameSize),
    hex8(0),
  ].join("");
}

/** Sorted, de-duplicated entries with every parent directory present. */
export function normaliseEntries(entries: readonly CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = normalise(e.path);
    if (byPath.has(path)) throw new ImageBuildError("cpio: duplicate entry path");
    byPath.set(path, { ...e, path });
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const existing = byPath.get(dir);
      if (existing === undefined) byPath.set(dir, { path: dir, type: "dir" });
      else if (existing.type !== "dir") throw new ImageBuildError("cpio: a parent path is not a directory");
    }
  }
  // Byte-wise order (not locale order) so every machine sorts the same way.
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function writeCpio(entries: readonly CpioEntry[], mtime: number): Uint8Array {
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > MAX_FIELD)
    throw new ImageBuildError("cpio: mtime out of range");
  const utf8 = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    total += b.length;
  };
  const record = (
    ino: number,
    mode: number,
    nlink: number,
    name: string,
    data: Uint8Array,
    rdev = [0, 0],
  ) => {
    if (data.length > MAX_FIELD) throw new ImageBuildError("cpio: file too large for newc");
    const nameBytes = utf8.encode(`${name}\0`);
    const [rdevMajor, rdevMinor] = rdev;
    push(
      utf8.encode(
        header({
          ino,
          mode,
          nlink,
          mtime,
          size: data.length,
          nameSize: nameBytes.length,
          rdevMajor,
          rdevMinor,
        }),
      ),
    );
    push(nameBytes);
    push(new Uint8Array(pad4(HEADER_SIZE + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  normaliseEntries(entries).forEach((e, i) => {
    const ino = i + 1;
    switch (e.type) {
      case "dir":
        record(ino, S_IFDIR | (e.mode ?? 0o755), 2, e.path, new Uint8Array(0));
        break;
      case "file":
        record(ino, S_IFREG | (e.mode ?? 0o644), 1, e.path, e.data);
        break;
      case "symlink":
        record(ino, S_IFLNK | 0o777, 1, e.path, utf8.encode(e.target));
        break;
      case "chardev":
        record(ino, S_IFCHR | (e.mode ?? 0o600), 1, e.path, new Uint8Array(0), [e.major, e.minor]);
        break;
    }
  });
  record(0, 0, 1, TRAILER, new Uint8Array(0));
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
