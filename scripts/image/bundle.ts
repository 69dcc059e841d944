/**
 * esbuild bundles of the enclave (ESM, with its lazily imported platform providers as chunks) and
 * of the guest init (CJS). Native packages stay outside the bundle and are copied into the image
 * beside it. Paths in the output are relative to the repository root, so the bundle does not
 * depend on where the checkout lives.
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { type BuildOptions, build } from "esbuild";
import { ImageBuildError } from "./errors.js";

export interface BundleFile {
  /** Path relative to the application directory in the image. */
  path: string;
  data: Uint8Array;
}

/** Loaded through require() of computed paths, so shipped as package files instead of bundled. */
export const NATIVE_PACKAGES = [
  "koffi",
  "@koromix/koffi-linux-x64",
  "@duckdb/node-bindings-linux-x64",
] as const;
const EXTERNAL = ["koffi", "@koromix/*", "@duckdb/node-bindings-*"];

/** Entries imported by a non-literal specifier from enclave/main.ts (esbuild cannot follow those). */
const EXTRA_ENCLAVE_ENTRIES = ["enclave/platform/nsm.ts"];

const COMMON: BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node24",
  write: false,
  external: EXTERNAL,
  legalComments: "eof",
  sourcemap: false,
  logLevel: "warning",
  charset: "utf8",
};

function collect(outdir: string, files: { path: string; contents: Uint8Array }[]): BundleFile[] {
  return files
    .map((f) => ({ path: relative(outdir, f.path), data: f.contents }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export async function bundleEnclave(repoRoot: string): Promise<BundleFile[]> {
  const main = join(repoRoot, "enclave/main.ts");
  if (!existsSync(main)) throw new ImageBuildError("bundle: enclave/main.ts not found");
  const entryPoints = [
    "enclave/main.ts",
    ...EXTRA_ENCLAVE_ENTRIES.filter((e) => existsSync(join(repoRoot, e))),
  ];
  const outdir = join(repoRoot, "enclave");
  const r = await build({
    ...COMMON,
    absWorkingDir: repoRoot,
    entryPoints,
    outbase: "enclave",
    outdir,
    format: "esm",
    splitting: true,
    entryNames: "[dir]/[name]",
    chunkNames: "chunks/[name]-[hash]",
    // Bundled CommonJS dependencies call require(); give ESM output one.
    banner: {
      js: 'import { createRequire as __cleanroomRequire } from "node:module"; const require = __cleanroomRequire(import.meta.url);',
    },
  });
  return collect(outdir, r.outputFiles ?? []);
}

export async function bundleInit(repoRoot: string): Promise<Uint8Array> {
  const outdir = join(repoRoot, "scripts/image");
  const r = await build({
    ...COMMON,
    absWorkingDir: repoRoot,
    entryPoints: ["scripts/image/guest-init.ts"],
    outdir,
    format: "cjs",
    banner: { js: "#!/usr/bin/node" },
  });
  const files = r.outputFiles ?? [];
  const [file] = files;
  if (file === undefined || files.length !== 1) throw new ImageBuildError("bundle: init bundle not produced");
  return file.contents;
}
