/**
 * How verification results and errors reach a terminal: one ✓/✗ line per check, the decoded
 * claims, and `--json` in the shape {verified, platform, claims, checks, errors}. Exit codes:
 * 0 verified, 1 refused, 2 usage or I/O error.
 */
import { isCleanroomError } from "../../attestation/errors.js";
import type { VerificationResult } from "../../attestation/result.js";

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

export function printVerification(r: VerificationResult, json: boolean, out = process.stdout): number {
  if (json) {
    const { verified, platform, simulated, claims, checks, errors } = r;
    out.write(`${JSON.stringify({ verified, platform, simulated, claims, checks, errors }, null, 2)}\n`);
  } else {
    out.write(`${r.platform}${r.simulated ? " (simulated platform)" : ""}\n`);
    for (const c of r.checks)
      out.write(`  ${c.ok ? "✓" : "✗"} ${c.name}${c.detail ? ` — ${c.detail}` : ""}\n`);
    for (const e of r.errors) out.write(`  error ${e.code}: ${e.message}\n`);
    out.write("claims:\n");
    for (const [k, v] of Object.entries(r.claims))
      out.write(`  ${k}: ${typeof v === "object" ? JSON.stringify(v) : v}\n`);
    out.write(r.verified ? "VERIFIED\n" : "REFUSED\n");
  }
  return r.verified ? EXIT_OK : EXIT_REFUSED;
}

/** Prints a failure as `error CODE: message` (never a stack) and returns its exit code. */
export function reportError(e: unknown, err = process.stderr): number {
  if (isCleanroomError(e)) {
    err.write(`error ${e.code}: ${e.message}\n`);
    return e.code === "ERR_USAGE" || e.code === "ERR_IO" ? EXIT_USAGE : EXIT_REFUSED;
  }
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    err.write(`error ERR_IO: ${code}\n`);
    return EXIT_USAGE;
  }
  err.write(`error ERR_INTERNAL: ${e instanceof Error ? e.message : "unexpected failure"}\n`);
  return EXIT_USAGE;
}
