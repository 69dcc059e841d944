/**
 * The scratch files that CSV segments pass through on their way into DuckDB. A file that has been
 * read is kept and overwritten by a later segment instead of being deleted: a new tmpfs file
 * costs page allocation and zeroing, about three times the copy itself. Every segment is still
 * read under a path of its own (the file is renamed to it), so nothing keyed by path can ever
 * serve an older segment. Files are 0600, in the engine's private memory-backed directory, and
 * all are deleted by `removeAll`.
 */
import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

export class SegmentFiles {
  /** Files already read, free to take the next segment. */
  readonly #spare: string[] = [];
  /** Every file that exists now, spare or not. */
  readonly #live = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly stem: string,
  ) {}

  /** Writes segment `index` and returns the path to read it from. */
  async write(index: number, parts: readonly Uint8Array[]): Promise<string> {
    const path = join(this.dir, `${this.stem}_${index}.csv`);
    const reused = this.#spare.pop();
    if (reused !== undefined) {
      this.#live.delete(reused);
      await rename(reused, path);
    }
    this.#live.add(path);
    const handle = await open(path, reused === undefined ? "wx" : "r+", 0o600);
    try {
      let size = 0;
      for (const p of parts) size += p.length;
      await handle.writev(parts, 0);
      await handle.truncate(size);
    } finally {
      await handle.close();
    }
    return path;
  }

  /** `path` has been read; a later segment may overwrite it. */
  release(path: string): void {
    if (this.#live.has(path)) this.#spare.push(path);
  }

  async removeAll(): Promise<void> {
    await Promise.all([...this.#live].map((p) => unlink(p).catch(() => undefined)));
    this.#live.clear();
    this.#spare.length = 0;
  }
}
