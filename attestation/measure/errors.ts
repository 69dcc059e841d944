import { CleanroomError } from "../errors.js";

/** Launch-measurement inputs refused: malformed firmware, unsupported option mix, bad parameter. */
export class MeasurementError extends CleanroomError {
  static override code = "ERR_MEASUREMENT";
}

/** An AWS Nitro enclave image file (EIF) that does not have the defined layout or checksum. */
export class EifFormatError extends CleanroomError {
  static override code = "ERR_EIF_FORMAT";
}
