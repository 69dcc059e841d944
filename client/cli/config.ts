/**
 * Profiles: the settings a party would otherwise repeat on every command (where the clean room
 * is, what evidence to accept, which contract and key) kept in `cleanroom.json`, found in the
 * current folder or the nearest folder above it (or named by `--config` / CLEANROOM_CONFIG).
 * Top-level settings apply to every command; `profiles.NAME` adds or overrides settings for
 * `--profile NAME` (or CLEANROOM_PROFILE). A value comes from, first to last: the command-line
 * flag, its environment variable, the selected profile, the file's top level. Paths in the file
 * are relative to the file's folder.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../attestation/errors.js";

export const CONFIG_FILE = "cleanroom.json";

type Kind = "string" | "path" | "list" | "paths" | "boolean";

interface Setting {
  flag: string;
  /** Environment variable, when the setting has one. */
  env?: string;
  kind: Kind;
}

/** Every setting a profile may hold (an allow-list: any other key in the file is refused). */
export const SETTINGS: Readonly<Record<string, Setting>> = {
  url: { flag: "--url", env: "CLEANROOM_URL", kind: "string" },
  state: { flag: "--state", env: "CLEANROOM_STATE", kind: "path" },
  timeout: { flag: "--timeout", env: "CLEANROOM_TIMEOUT", kind: "string" },
  measurement: { flag: "--measurement", env: "CLEANROOM_MEASUREMENT", kind: "list" },
  manifest: { flag: "--manifest", env: "CLEANROOM_MANIFEST", kind: "path" },
  pcr: { flag: "--pcr", kind: "list" },
  trustSimRoot: { flag: "--trust-sim-root", env: "CLEANROOM_TRUST_SIM_ROOT", kind: "paths" },
  minTcb: { flag: "--min-tcb", kind: "list" },
  crl: { flag: "--crl", kind: "paths" },
  signingCert: { flag: "--signing-cert", kind: "path" },
  allowAnyMeasurement: { flag: "--allow-any-measurement", kind: "boolean" },
  contract: { flag: "--contract", env: "CLEANROOM_CONTRACT", kind: "path" },
  key: { flag: "--key", env: "CLEANROOM_KEY", kind: "path" },
  party: { flag: "--party", env: "CLEANROOM_PARTY", kind: "string" },
};

export type SettingName = keyof typeof SETTINGS;
export type SettingValues = Partial<Record<string, string | string[] | boolean>>;

export interface ConfigFile {
  path: string;
  settings: SettingValues;
  profiles: Record<string, SettingValues>;
}

/** The config file in `start` or the nearest folder above it, or undefined. */
export function findConfigUpward(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE);
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function settingValue(
  name: string,
  value: unknown,
  where: string,
  base: string,
): string | string[] | boolean {
  const s = SETTINGS[name]!;
  const wrong = (what: string) => new UsageError(`${where}: "${name}" must be ${what}`);
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  switch (s.kind) {
    case "boolean":
      if (typeof value !== "boolean") throw wrong("true or false");
      return value;
    case "string":
    case "path":
      if (typeof value !== "string" || value === "") throw wrong("a non-empty string");
      return s.kind === "path" ? path(value) : value;
    default: {
      const list = typeof value === "string" ? [value] : value;
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string" && v !== "")) {
        throw wrong("a string or a list of strings");
      }
      return s.kind === "paths" ? list.map(path) : [...list];
    }
  }
}

function settingsOf(doc: Record<string, unknown>, where: string, base: string): SettingValues {
  const out: SettingValues = {};
  for (const [name, value] of Object.entries(doc)) {
    if (!Object.hasOwn(SETTINGS, name)) {
      throw new UsageError(
        `${where}: unknown setting "${name}" (settings: ${Object.keys(SETTINGS).join(", ")}, profiles)`,
      );
    }
    out[name] = settingValue(name, value, where, base);
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads and validates a config file; relative paths in it become absolute (from its folder). */
export function readConfigFile(path: string): ConfigFile {
  const file = resolve(path);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    if (e instanceof SyntaxError) throw new UsageError(`${file}: not JSON (${e.message})`);
    throw e;
  }
  if (!isObject(doc)) throw new UsageError(`${file}: must be a JSON object`);
  const base = dirname(file);
  const { profiles = {}, ...top } = doc;
  if (!isObject(profiles)) throw new UsageError(`${file}: "profiles" must be an object of profiles`);
  const out: ConfigFile = { path: file, settings: settingsOf(top, file, base), profiles: {} };
  for (const [name, p] of Object.entries(profiles)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError(`${file}: profile name "${name}"`);
    if (!isObject(p)) throw new UsageError(`${file}: profile ${name} must be an object of settings`);
    out.profiles[name] = settingsOf(p, `${file}: profile ${name}`, base);
  }
  return out;
}

/** The file's top-level settings overlaid with the named profile's. */
export function profileSettings(config: ConfigFile, profile: string | undefined): SettingValues {
  if (profile === undefined) return config.settings;
  const p = config.profiles[profile];
  if (!p) {
    const names = Object.keys(config.profiles);
    throw new UsageError(
      `no profile ${profile} in ${config.path} (${names.length ? `profiles: ${names.join(", ")}` : "it has no profiles"}; add one with cleanroom init --profile ${profile})`,
    );
  }
  return { ...config.settings, ...p };
}

/** The config file the running command read, for messages that say where to set a missing value. */
let configInUse: string | undefined;

/** The config file the running command read its settings from, if any. */
export function configPathInUse(): string | undefined {
  return configInUse;
}

/**
 * Fills the options of `cmd` that neither the command line nor the environment set from the
 * config file (and profile) selected by the global --config/--profile options.
 */
export function applyConfig(cmd: Command): void {
  configInUse = undefined;
  const g = cmd.optsWithGlobals<{ config?: string; profile?: string }>();
  const path = g.config ?? findConfigUpward(process.cwd());
  if (path === undefined) {
    if (g.profile !== undefined) {
      throw new UsageError(
        `--profile ${g.profile}: no ${CONFIG_FILE} in ${process.cwd()} or any folder above it (cleanroom init writes one)`,
      );
    }
    return;
  }
  const config = readConfigFile(path);
  configInUse = config.path;
  const values = profileSettings(config, g.profile);
  for (const option of cmd.options) {
    const key = option.attributeName();
    if (values[key] === undefined) continue;
    const source = cmd.getOptionValueSource(key);
    if (source === "cli" || source === "env") continue;
    cmd.setOptionValueWithSource(key, values[key], "config");
  }
}

/** "pass --url, set CLEANROOM_URL, or add "url" to ..." for a setting that is missing. */
export function whereToSet(name: SettingName): string {
  const s = SETTINGS[name]!;
  const file = configInUse ?? CONFIG_FILE;
  return `pass ${s.flag}${s.env ? `, set ${s.env}` : ""}, or add "${name}" to ${file} (cleanroom init writes one)`;
}
