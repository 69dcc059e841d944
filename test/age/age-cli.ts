/**
 * The stock `age` CLI (from PATH) driven through temp files, for interop tests. Tests that use it
 * call `skipWithout(ctx, "age")` or `needsTool("age")` (test/tools.ts) first.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function inTempDir<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "age-interop-"));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs age and returns its stdout (age -d creates no -o file for an empty plaintext). */
function run(args: string[]): Uint8Array {
  const r = spawnSync("age", args, { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`age ${args[0]} failed: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

/** `age -r R1 -r R2 ... -o out in`. */
export function cliEncrypt(plaintext: Uint8Array, recipients: readonly string[]): Uint8Array {
  return inTempDir((dir) => {
    writeFileSync(join(dir, "in"), plaintext);
    run([...recipients.flatMap((r) => ["-r", r]), "-o", join(dir, "out"), join(dir, "in")]);
    return new Uint8Array(readFileSync(join(dir, "out")));
  });
}

/** `age -d -i keyfile -o out in`; throws when age refuses the file. */
export function cliDecrypt(ciphertext: Uint8Array, identities: readonly string[]): Uint8Array {
  return inTempDir((dir) => {
    writeFileSync(join(dir, "key"), `# test identities\n${identities.join("\n")}\n`);
    writeFileSync(join(dir, "in"), ciphertext);
    return run(["-d", "-i", join(dir, "key"), join(dir, "in")]);
  });
}

/** `age-keygen -y`: the recipient the stock tool derives from an identity. */
export function cliRecipientOf(identity: string): string {
  return inTempDir((dir) => {
    writeFileSync(join(dir, "key"), `${identity}\n`);
    const r = spawnSync("age-keygen", ["-y", join(dir, "key")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`age-keygen -y failed: ${r.stderr}`);
    return r.stdout.trim();
  });
}

/** Deterministic, non-repeating test bytes (so a chunk swap or offset slip is visible). */
export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
