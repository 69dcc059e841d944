import type { CleanroomError } from "./errors.js";

export type Platform = "sev-snp" | "nitro";

/** One line of a verification report: what was checked and whether it passed. */
export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

/**
 * The outcome of parse → verify → policy for one piece of evidence, whatever the platform.
 * `claims` is plain JSON (hex strings, numbers, booleans) so the CLI can print it as is.
 */
export interface VerificationResult {
  verified: boolean;
  platform: Platform;
  simulated: boolean;
  claims: Record<string, unknown>;
  checks: Check[];
  errors: { code: string; message: string }[];
}

export function errorEntry(e: CleanroomError): { code: string; message: string } {
  return { code: e.code, message: e.message };
}
