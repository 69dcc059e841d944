/**
 * AWS Nitro evidence from the Nitro Secure Module: an attestation request carrying the 64-byte
 * report data as user_data and the verifier's nonce, answered with a COSE_Sign1 document. The
 * transport is injectable so the message handling is tested without the device.
 */
import { bytesEqual } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { Evidence } from "../../attestation/evidence.js";
import { MAX_AUX_BYTES } from "../../attestation/nitro/document.js";
import { parseNitro } from "../../attestation/nitro/parse.js";
import { decodeAttestationResponse, encodeAttestationRequest } from "./nsm-cbor.js";
import { createIoctlTransport, type NsmTransport } from "./nsm-ioctl.js";
import { PlatformError } from "./platform-error.js";
import type { EvidenceProvider } from "./provider.js";

export const DEFAULT_NSM_DEVICE = "/dev/nsm";
const REPORT_DATA_BYTES = 64;

export interface NsmProviderOptions {
  device?: string;
  /** Replaces the ioctl on `device` (tests, or a helper process); koffi is then never loaded. */
  transport?: NsmTransport;
}

const matches = (got: Uint8Array | null, want: Uint8Array): boolean => got !== null && bytesEqual(got, want);

/** Opens the device (loading koffi) unless a transport is given; fails early if it cannot. */
export async function createNsmProvider(opts: NsmProviderOptions = {}): Promise<EvidenceProvider> {
  const transport = opts.transport ?? (await createIoctlTransport(opts.device ?? DEFAULT_NSM_DEVICE));
  return {
    platform: "nitro",
    simulated: false,
    async getEvidence(reportData: Uint8Array, nonce: Uint8Array): Promise<Evidence> {
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_BYTES) {
        throw new UsageError("nsm: report data is not 64 bytes");
      }
      if (!(nonce instanceof Uint8Array) || nonce.length === 0 || nonce.length > MAX_AUX_BYTES) {
        throw new UsageError("nsm: nonce is not 1..1024 bytes");
      }
      const document = decodeAttestationResponse(
        await transport(encodeAttestationRequest({ userData: reportData, nonce })),
      );
      // Parsing (no crypto) catches a document that answers another request before it is served.
      const { document: doc } = parseNitro(document);
      if (!matches(doc.userData, reportData) || !matches(doc.nonce, nonce)) {
        throw new PlatformError("bad-output", "nsm: document answers another request");
      }
      return { platform: "nitro", evidence: document };
    },
  };
}
