/**
 * What reaches the terminal. stdout carries what the command was asked for: a report for people
 * (a verification, a status), or data to capture (a digest, an approval, a result), or with
 * --json one JSON document and nothing else; notes and progress go to stderr, so `$(…)` and
 * pipes get clean data. Exit codes: 0 done, 1 refused (verification, policy or server refusal),
 * 2 usage or I/O error.
 */
import { isCleanroomError } from "../../attestation/errors.js";
import type { VerificationResult } from "../../attestation/result.js";

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

type Stream = { write(s: string): unknown };

/** One line for people, on stderr. */
export function say(line: string, err: Stream = process.stderr): void {
  err.write(`${line}\n`);
}

/** The one JSON document of a --json run, on stdout. */
export function printJson(value: unknown, out: Stream = process.stdout): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function verificationJson(r: VerificationResult): Record<string, unknown> {
  const { verified, platform, simulated, claims, checks, errors } = r;
  return { verified, platform, simulated, claims, checks, errors };
}

/** One ✓/✗ line per check and the decoded claims, or the JSON document. */
export function printVerification(
  r: VerificationResult,
  json: boolean,
  out: Stream = process.stdout,
): number {
  if (json) printJson(verificationJson(r), out);
  else {
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

/** A file-system failure in words, with the path it concerns and what to do. */
function fileProblem(code: string, path: string | undefined): string {
  const at = path ?? "(unknown path)";
  switch (code) {
    case "ENOENT":
      return `no such file or folder: ${at}`;
    case "EEXIST":
      return `${at} already exists; choose another name or remove it first`;
    case "EACCES":
    case "EPERM":
      return `permission denied: ${at}`;
    case "EISDIR":
      return `${at} is a folder, not a file`;
    case "ENOTDIR":
      return `a part of ${at} is not a folder`;
    case "ENOSPC":
      return `no space left on the device holding ${at}`;
    default:
      return `${code}${path ? `: ${path}` : ""}`;
  }
}

/** Why an attestation was refused (the failed checks), and the next step when there is an obvious one. */
function refusalDetail(e: unknown): string {
  const result = (e as { result?: VerificationResult }).result;
  if (!result?.errors?.length) return "";
  const why = result.errors.map((x) => `${x.code} ${x.message}`).join("; ");
  const next = result.errors.some((x) => /holds no contract/.test(x.message))
    ? " (submit it first: cleanroom contract submit)"
    : "";
  return `: ${why}${next}`;
}

/**
 * Prints a failure as `error CODE: message` on stderr (never a stack) and returns its exit code;
 * with `json`, also `{"error": {code, message}}` there (a --json run keeps stdout JSON).
 */
export function reportError(e: unknown, err: Stream = process.stderr, json?: Stream): number {
  let code: string;
  let message: string;
  let exit: number;
  const errno = (e as { code?: unknown; path?: unknown })?.code;
  if (isCleanroomError(e)) {
    code = e.code;
    message = e.message + refusalDetail(e);
    exit = e.code === "ERR_USAGE" || e.code === "ERR_IO" ? EXIT_USAGE : EXIT_REFUSED;
  } else if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) {
    const path = (e as { path?: unknown }).path;
    code = "ERR_IO";
    message = fileProblem(errno, typeof path === "string" ? path : undefined);
    exit = EXIT_USAGE;
  } else {
    code = "ERR_INTERNAL";
    message = e instanceof Error ? e.message : "unexpected failure";
    exit = EXIT_USAGE;
  }
  err.write(`error ${code}: ${message}\n`);
  // A failed file check carries its findings (lines, columns, counts): programs want them too.
  const report = (e as { report?: unknown })?.report;
  if (json) printJson({ error: { code, message, ...(report ? { report } : {}) } }, json);
  return exit;
}
