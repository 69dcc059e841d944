/** Runs the whole `cleanroom` program in-process (program.ts `main`) and captures what it prints. */
import { vi } from "vitest";
import { main } from "../../client/cli/program.js";

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** What a write was given, as text (the CLI writes results as bytes). */
const text = (s: string | Uint8Array) => (typeof s === "string" ? s : Buffer.from(s).toString("utf8"));

export async function cli(...argv: string[]): Promise<CliRun> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => {
    out += text(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    err += text(s);
    return true;
  });
  try {
    return { code: await main(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

/** Runs `body` with these environment variables set (undefined: removed), restoring them after. */
export async function withEnv<T>(
  vars: Record<string, string | undefined>,
  body: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(vars);
  try {
    return await body();
  } finally {
    set(saved);
  }
}

/** Every CLEANROOM_* variable unset, so the developer's own settings cannot leak into a test. */
export function noCleanroomEnv(): Record<string, undefined> {
  return Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith("CLEANROOM_"))
      .map((k) => [k, undefined]),
  );
}

/** `contract init` arguments for `parties` (id → key file or published public keys), writing `out`. */
export const contractInitArgs = (parties: Record<string, string>, out: string): string[] => [
  "contract",
  "init",
  ...Object.entries(parties).flatMap(([id, file]) => ["--party", `${id}=${file}`]),
  "--out",
  out,
];

/** `hash-ids` arguments: the e-mails in column `email` of `from`, hashed into column `as` of `to`. */
export const hashEmailsArgs = (from: string, to: string, as = "user_id"): string[] => [
  "hash-ids",
  "--column",
  "email",
  "--kind",
  "email",
  "--as",
  as,
  from,
  to,
];
