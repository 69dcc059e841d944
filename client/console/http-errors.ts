/**
 * Errors as the page receives them: `{error: {code, message}}` with an HTTP status. The page runs
 * the party's own code and the messages name the party's own files, so they are shown as they are;
 * a failure that is not one of ours is reported without its internals.
 */
import { isCleanroomError } from "../../attestation/errors.js";
import type { ApiError } from "./api-types.js";
import { statusOf } from "./errors.js";

/** A file-system failure in words, with the path it concerns. */
function fileProblem(code: string, path: string | undefined): string {
  const at = path ?? "(unknown path)";
  switch (code) {
    case "ENOENT":
      return `no such file or folder: ${at}`;
    case "EACCES":
    case "EPERM":
      return `permission denied: ${at}`;
    case "EISDIR":
      return `${at} is a folder, not a file`;
    case "ENOSPC":
      return `no space left on the device holding ${at}`;
    default:
      return `${code}${path ? `: ${path}` : ""}`;
  }
}

export function errorBody(e: unknown): ApiError & { status: number } {
  if (isCleanroomError(e)) return { status: statusOf(e), error: { code: e.code, message: e.message } };
  const errno = (e as { code?: unknown } | null)?.code;
  if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) {
    const path = (e as { path?: unknown }).path;
    return {
      status: 422,
      error: { code: "ERR_IO", message: fileProblem(errno, typeof path === "string" ? path : undefined) },
    };
  }
  return {
    status: 500,
    error: { code: "ERR_INTERNAL", message: "unexpected failure in the console process (see its terminal)" },
  };
}
