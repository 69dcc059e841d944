/**
 * Failures of the hardware evidence interfaces (configfs-tsm, /dev/nsm). One code for the family;
 * `reason` tells callers and tests what went wrong without reading the message, and `detail`
 * carries a fixed token from the platform (an errno name, an NSM error name), never input data.
 */
import { CleanroomError } from "../../attestation/errors.js";

export type PlatformFailure =
  /** The interface is absent or not usable by this process (not mounted, no device, no permission). */
  | "unavailable"
  /** configfs-tsm is served by another TSM than the one asked for (e.g. TDX instead of SEV-SNP). */
  | "wrong-provider"
  /** Another writer changed the report request between our write and our read. */
  | "generation-race"
  /** The platform answered with bytes of the wrong shape or for another request. */
  | "bad-output"
  /** The platform refused or failed the request (kernel errno, NSM error response). */
  | "refused"
  | "timeout";

export class PlatformError extends CleanroomError {
  static override code = "ERR_PLATFORM";
  readonly reason: PlatformFailure;
  readonly detail: string | undefined;

  constructor(reason: PlatformFailure, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.detail = options?.detail;
  }
}

/** The errno name of a Node system error (ENOENT, EACCES...), if it is one. */
export function errnoName(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}
