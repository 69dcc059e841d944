import { CleanroomError } from "../../attestation/errors.js";

/** The sealed image cannot be assembled: a pinned input is missing or differs, or a layout rule is broken. */
export class ImageBuildError extends CleanroomError {
  static override code = "ERR_IMAGE_BUILD";
}
