/**
 * Builds the partner console's page (client/console/app) into dist/client/console/assets, where
 * `cleanroom console` serves it from: one ES module bundling the page, lit and Observable Plot,
 * one stylesheet and index.html. Nothing is loaded from elsewhere at run time, so it works offline.
 *   node dist/scripts/build-console.js [OUT_DIR]
 */
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** The repository root, from this module in scripts/ or in dist/scripts/. */
function root(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, here.includes(`${join("dist", "scripts")}`) ? "../.." : "..");
}

export const APP_DIR = "client/console/app";

/** Bundles the page into `outDir` (emptied first); returns the files written. */
export async function buildConsoleAssets(outDir: string, repo = root()): Promise<string[]> {
  const app = join(repo, APP_DIR);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    absWorkingDir: repo,
    entryPoints: { app: join(app, "main.ts"), "app-style": join(app, "app.css") },
    outdir: outDir,
    entryNames: "[name]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    legalComments: "linked",
    charset: "utf8",
    logLevel: "warning",
  });
  // One stylesheet named as index.html links it.
  await rename(join(outDir, "app-style.css"), join(outDir, "app.css"));
  await copyFile(join(app, "index.html"), join(outDir, "index.html"));
  return ["index.html", "app.js", "app.css"];
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const out = resolve(process.argv[2] ?? join(root(), "dist/client/console/assets"));
  buildConsoleAssets(out)
    .then((files) => process.stdout.write(`console page built in ${out}: ${files.join(", ")}\n`))
    .catch((e: unknown) => {
      process.stderr.write(`build-console failed: ${(e as Error).message}\n`);
      process.exit(1);
    });
}
