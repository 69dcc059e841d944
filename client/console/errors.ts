/**
 * Refusals of the console's local API. Each has a stable code and an HTTP status; messages name
 * what was refused and what to do, never a value from a file or a result.
 */
import { CleanroomError } from "../../attestation/errors.js";

/** The request did not carry this launch's token (another page, or a stale tab). */
export class ConsoleTokenError extends CleanroomError {
  static override code = "ERR_CONSOLE_TOKEN";
  readonly status = 401;
}

/** The request came through a name or origin other than the console's own (DNS rebinding, another site). */
export class ConsoleOriginError extends CleanroomError {
  static override code = "ERR_CONSOLE_ORIGIN";
  readonly status = 403;
}

/** No such page, file, job or result. */
export class ConsoleNotFoundError extends CleanroomError {
  static override code = "ERR_CONSOLE_NOT_FOUND";
  readonly status = 404;
}

/** A request body or parameter the console does not accept. */
export class ConsoleRequestError extends CleanroomError {
  static override code = "ERR_CONSOLE_REQUEST";
  readonly status = 400;
}

/** The user cancelled the operation; what it had started was stopped. */
export class ConsoleCancelledError extends CleanroomError {
  static override code = "ERR_CANCELLED";
  readonly status = 409;
}

/** HTTP status for an error the console answers with. */
export function statusOf(e: unknown): number {
  const s = (e as { status?: unknown })?.status;
  if (
    e instanceof ConsoleTokenError ||
    e instanceof ConsoleOriginError ||
    e instanceof ConsoleNotFoundError ||
    e instanceof ConsoleRequestError ||
    e instanceof ConsoleCancelledError
  ) {
    return s as number;
  }
  return 422;
}

/** The local check found problems the enclave would refuse the file for; nothing was encrypted or sent. */
export class ConsoleCheckError extends CleanroomError {
  static override code = "ERR_CHECK_FAILED";
  readonly status = 422;
}
