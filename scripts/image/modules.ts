/**
 * Kernel modules for the initramfs, with their dependencies first. Debian's kernel package ships
 * no modules.dep (depmod runs at install), so the order comes from each module's own `.modinfo`
 * `depends=` field, read from the .ko.xz with the system's `xz` (a lossless decoder: the bytes it
 * returns do not depend on its version). The compressed files go into the image unchanged; the
 * kernel decompresses them itself (MODULE_DECOMPRESS).
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { ImageBuildError } from "./errors.js";

/** `-` and `_` are the same in module names. */
const canonical = (name: string) => name.replace(/-/g, "_");

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Map of canonical module name → file path, for every module under `modulesDir`. */
export function indexModules(modulesDir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of walk(modulesDir)) {
    const m = /([^/]+)\.ko(\.xz)?$/.exec(file);
    if (m) out.set(canonical(m[1]!), file);
  }
  return out;
}

/** The `depends=` list in a module's .modinfo strings (NUL-separated `key=value`). */
export function moduleDepends(modinfo: Uint8Array): string[] {
  const text = new TextDecoder("latin1").decode(modinfo);
  const m = /\0depends=([^\0]*)\0/.exec(text);
  return m?.[1] ? m[1].split(",").filter(Boolean).map(canonical) : [];
}

export function readModuleBytes(file: string): Uint8Array {
  return file.endsWith(".xz")
    ? new Uint8Array(execFileSync("xz", ["-dc", file], { maxBuffer: 1 << 28 }))
    : new Uint8Array(execFileSync("cat", [file], { maxBuffer: 1 << 28 }));
}

/**
 * Load order for `wanted` (dependencies before dependents, each module once, skipping those in
 * `already`). `depsOf` is injectable so the ordering can be tested without a kernel tree.
 */
export function moduleLoadOrder(
  wanted: readonly string[],
  depsOf: (name: string) => string[],
  already: ReadonlySet<string> = new Set(),
): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  for (const n of already) state.set(canonical(n), "done");
  const visit = (name: string) => {
    const s = state.get(name);
    if (s === "done") return;
    if (s === "visiting") throw new ImageBuildError("modules: dependency cycle");
    state.set(name, "visiting");
    for (const d of depsOf(name)) visit(d);
    state.set(name, "done");
    order.push(name);
  };
  for (const w of wanted) visit(canonical(w));
  return order;
}

export interface ModulePlan {
  /** Module files relative to the kernel package root (e.g. lib/modules/V/kernel/...). */
  files: string[];
  /** Per group, the image paths (absolute) in load order. */
  groups: Record<string, string[]>;
}

/** Resolves every group against the kernel tree unpacked at `root` (`lib/modules/<version>`). */
export function planModules(
  root: string,
  kernelVersion: string,
  groups: Record<string, readonly string[]>,
): ModulePlan {
  const modulesDir = join(root, "lib/modules", kernelVersion);
  const index = indexModules(modulesDir);
  const cache = new Map<string, string[]>();
  const depsOf = (name: string) => {
    const file = index.get(name);
    if (file === undefined) throw new ImageBuildError("modules: module not in the kernel package");
    let deps = cache.get(name);
    if (deps === undefined) {
      deps = moduleDepends(readModuleBytes(file));
      cache.set(name, deps);
    }
    return deps;
  };
  const common = moduleLoadOrder(groups.common ?? [], depsOf);
  const out: Record<string, string[]> = {};
  const files = new Set<string>();
  for (const [group, names] of Object.entries(groups)) {
    const order = group === "common" ? common : moduleLoadOrder(names, depsOf, new Set(common));
    out[group] = order.map((n) => {
      const rel = relative(root, index.get(n)!);
      files.add(rel);
      return `/${rel}`;
    });
  }
  return { files: [...files].sort(), groups: out };
}
