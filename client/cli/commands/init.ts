/**
 * `cleanroom init`: writes `cleanroom.json` in the current folder (or --config FILE) so later
 * commands need no repeated flags. Without --profile it writes the shared settings (the URL,
 * the evidence policy, the contract); with --profile NAME it adds that profile (typically a key
 * and party) to the file. Given flags, it asks nothing; on a terminal without any, it asks.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { SIM_FILES } from "../../../attestation/sim/platform.js";
import { CONFIG_FILE, readConfigFile, SETTINGS } from "../config.js";
import { addJsonOption, collect, run } from "../options.js";
import { printJson, say } from "../output.js";

/** What `npm start` serves; init writes it when neither --url nor CLEANROOM_URL says otherwise. */
export const LOCAL_URL = "http://127.0.0.1:8080";

interface InitFlags {
  url?: string;
  simDir?: string;
  trustSimRoot: string[];
  measurement: string[];
  manifest?: string;
  contract?: string;
  key?: string;
  party?: string;
  state?: string;
  force?: boolean;
  json?: boolean;
}

type Settings = Record<string, string | string[]>;

async function ask(
  questions: { name: keyof InitFlags; question: string; fallback?: string }[],
): Promise<Settings> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const out: Settings = {};
  try {
    for (const q of questions) {
      const answer = (await rl.question(`${q.question}${q.fallback ? ` [${q.fallback}]` : ""}: `)).trim();
      const value = answer || q.fallback;
      if (value) out[q.name] = value;
    }
  } finally {
    rl.close();
  }
  return out;
}

/** Paths as the file will hold them: relative to its folder, so the folder can move as a whole. */
function fromConfigDir(configDir: string, p: string): string {
  const abs = resolve(p);
  const rel = relative(configDir, abs);
  return rel === "" || isAbsolute(rel) ? abs : rel;
}

function collected(f: InitFlags, profile: string | undefined): Settings {
  const s: Settings = {};
  if (f.url !== undefined) s.url = f.url;
  else if (profile === undefined) s.url = process.env.CLEANROOM_URL ?? LOCAL_URL;
  const roots = [...f.trustSimRoot];
  let manifest = f.manifest;
  if (f.simDir !== undefined) {
    roots.push(join(f.simDir, SIM_FILES.roots));
    manifest ??= join(f.simDir, SIM_FILES.expected);
  }
  if (roots.length) s.trustSimRoot = roots;
  if (f.measurement.length) s.measurement = f.measurement;
  if (manifest !== undefined) s.manifest = manifest;
  for (const k of ["contract", "key", "party", "state"] as const) if (f[k] !== undefined) s[k] = f[k];
  return s;
}

export function registerInitCommand(program: Command): void {
  const cmd = program
    .command("init")
    .description(
      `write ${CONFIG_FILE} here (with --profile NAME: add that profile) so later commands need no repeated flags`,
    )
    .option("--url <url>", `the clean room host (default ${LOCAL_URL}, or CLEANROOM_URL)`)
    .option("--sim-dir <dir>", "a simulated platform's folder: trust its roots and expect its image")
    .option("--trust-sim-root <file>", "trust the simulated roots in this PEM file (repeatable)", collect, [])
    .option("--measurement <hex>", "accepted SEV-SNP launch measurement (repeatable)", collect, [])
    .option("--manifest <file>", "release manifest (manifest.json) or simulated expected.json")
    .option("--contract <file>", "the contract this party approves")
    .option("--key <file>", "this party's key file")
    .option("--party <id>", "the party the key belongs to")
    .option("--state <dir>", "state directory (default ~/.cleanroom)")
    .option("--force", "replace the settings or the profile if the file already has them");
  addJsonOption(cmd).action((f: InitFlags, self: Command) =>
    run(async () => {
      const { profile, config } = self.optsWithGlobals<{ profile?: string; config?: string }>();
      const file = resolve(config ?? CONFIG_FILE);
      const dir = dirname(file);
      let settings = collected(f, profile);
      const given = Object.keys(settings).filter((k) => !(k === "url" && f.url === undefined));
      if (given.length === 0 && process.stdin.isTTY && !f.json) {
        settings = {
          ...settings,
          ...(await ask([
            ...(profile === undefined
              ? [
                  { name: "url" as const, question: "clean room URL", fallback: settings.url as string },
                  { name: "manifest" as const, question: "expected image (manifest.json or expected.json)" },
                  { name: "contract" as const, question: "contract file", fallback: "contract.json" },
                ]
              : []),
            { name: "key" as const, question: "this party's key file" },
          ])),
        };
      }
      const written: Settings = {};
      for (const [k, v] of Object.entries(settings)) {
        const kind = SETTINGS[k]!.kind;
        written[k] =
          kind === "path"
            ? fromConfigDir(dir, v as string)
            : kind === "paths"
              ? (v as string[]).map((p) => fromConfigDir(dir, p))
              : v;
      }
      let doc: Record<string, unknown> = {};
      if (existsSync(file)) {
        readConfigFile(file); // refuses a broken file before it is changed
        doc = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      }
      if (profile === undefined) {
        const kept = Object.keys(written).filter((k) => k in doc);
        if (kept.length && !f.force) {
          throw new UsageError(`${file} already sets ${kept.join(", ")}; pass --force to replace them`);
        }
        doc = { ...doc, ...written };
      } else {
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(profile)) throw new UsageError(`profile name ${profile}`);
        const profiles = (doc.profiles ?? {}) as Record<string, unknown>;
        if (profiles[profile] !== undefined && !f.force) {
          throw new UsageError(`${file} already has a profile ${profile}; pass --force to replace it`);
        }
        doc = { ...doc, profiles: { ...profiles, [profile]: written } };
      }
      await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`);
      readConfigFile(file);
      if (f.json) printJson({ config: file, ...(profile ? { profile } : {}), settings: written });
      else {
        say(`${profile ? `profile ${profile} written to` : "settings written to"} ${file}:`);
        for (const [k, v] of Object.entries(written)) say(`  ${k}: ${Array.isArray(v) ? v.join(", ") : v}`);
        for (const k of ["contract", "key", "manifest"] as const) {
          const p = written[k];
          if (typeof p === "string" && !existsSync(resolve(dir, p))) say(`  (${k} ${p} does not exist yet)`);
        }
      }
      return 0;
    }, f.json),
  );
}
