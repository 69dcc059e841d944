/**
 * Fetching the pinned outside inputs through their ordinary clients, into a cache directory,
 * and refusing any whose digest differs from its pin. npm: `npm pack NAME@VERSION` (the runtime
 * package is never installed, so its os/cpu/bin fields cannot affect `npm ci` or shadow the
 * project's own Node). Debian: `apt-get download` with a private apt state that knows bookworm
 * and bookworm-backports, then `dpkg-deb -x`.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImageBuildError } from "./errors.js";
import type { DebPin, NpmPin } from "./pins.js";

export const DEBIAN_MIRROR = "http://deb.debian.org/debian";
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

export function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** SRI string (`sha512-<base64>`) of the bytes, in the algorithm the pin names. */
export function integrityOf(b: Uint8Array, algorithm: string): string {
  return `${algorithm}-${createHash(algorithm).update(b).digest("base64")}`;
}

export function checkIntegrity(b: Uint8Array, sri: string): void {
  const alg = sri.slice(0, sri.indexOf("-"));
  if (!["sha512", "sha384", "sha256"].includes(alg) || integrityOf(b, alg) !== sri)
    throw new ImageBuildError("fetch: npm tarball integrity differs from its pin");
}

/** The npm tarball of `pin`, fetched once into `cache` and checked on every use. */
export function fetchNpmTarball(pin: NpmPin, cache: string): Uint8Array {
  mkdirSync(cache, { recursive: true });
  const file = join(cache, `${pin.name.replace(/^@/, "").replace("/", "-")}-${pin.version}.tgz`);
  if (!existsSync(file)) {
    execFileSync("npm", ["pack", `${pin.name}@${pin.version}`, "--pack-destination", cache, "--silent"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  const bytes = new Uint8Array(readFileSync(file));
  checkIntegrity(bytes, pin.integrity);
  return bytes;
}

function aptOptions(state: string): string[] {
  return [
    `-oDir::State=${state}`,
    `-oDir::State::Lists=${join(state, "lists")}`,
    `-oDir::Cache=${join(state, "cache")}`,
    `-oDir::Etc::SourceList=${join(state, "sources.list")}`,
    "-oDir::Etc::SourceParts=/dev/null",
    "-oDir::Etc::Preferences=/dev/null",
    `-oDir::Etc::PreferencesParts=${join(state, "preferences.d")}`,
    "-oAPT::Sandbox::User=root",
    "-qq",
  ];
}

/** A private apt state (lists, cache) so the build needs no change to the machine's sources. */
function aptState(cache: string, suites: readonly string[]): string {
  const state = join(cache, "apt");
  for (const d of ["lists/partial", "cache/archives/partial", "preferences.d"])
    mkdirSync(join(state, d), { recursive: true });
  const sources = suites.map((s) => `deb [signed-by=${KEYRING}] ${DEBIAN_MIRROR} ${s} main\n`).join("");
  writeFileSync(join(state, "sources.list"), sources);
  return state;
}

/** The .deb of each pin in `cache/debs`, downloaded with apt (signature-checked indexes) if absent. */
export function fetchDebs(pins: readonly DebPin[], cache: string): Map<string, string> {
  const dir = join(cache, "debs");
  mkdirSync(dir, { recursive: true });
  const fileOf = (p: DebPin) => join(dir, `${p.package}_${p.version.replace(/:/g, "%3a")}_amd64.deb`);
  const missing = pins.filter((p) => !existsSync(fileOf(p)));
  if (missing.length > 0) {
    const state = aptState(cache, [...new Set(pins.map((p) => p.suite))].sort());
    execFileSync("apt-get", [...aptOptions(state), "update"], { stdio: "inherit" });
    execFileSync(
      "apt-get",
      [...aptOptions(state), "download", ...missing.map((p) => `${p.package}=${p.version}`)],
      {
        cwd: dir,
        stdio: "inherit",
      },
    );
  }
  const out = new Map<string, string>();
  for (const p of pins) {
    const file = fileOf(p);
    if (!existsSync(file)) throw new ImageBuildError("fetch: a pinned Debian package was not downloaded");
    if (sha256Hex(readFileSync(file)) !== p.sha256)
      throw new ImageBuildError("fetch: Debian package digest differs from its pin");
    out.set(p.package, file);
  }
  return out;
}

/** Unpacks a .deb's data into `dest` (dpkg-deb -x; no maintainer scripts run). */
export function extractDeb(deb: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  execFileSync("dpkg-deb", ["-x", deb, dest]);
}

/** Unpacks `member` paths of a .tgz into `dest`. */
export function extractTgz(tgz: string, dest: string, members: readonly string[]): void {
  mkdirSync(dest, { recursive: true });
  execFileSync("tar", ["-xzf", tgz, "-C", dest, ...members]);
}
