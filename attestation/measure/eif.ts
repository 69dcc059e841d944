/**
 * Nitro PCRs of an enclave image: each register starts at 48 zero bytes and is extended once
 * with the SHA-384 of its measured stream (PCR0 whole image, PCR1 kernel + boot ramdisk,
 * PCR2 application ramdisks, PCR8 signing certificate).
 */
import { concatBytes, sha384 } from "../bytes.js";
import { type Eif, parseEif } from "./eif-format.js";
import { parseEifSignature } from "./eif-signature.js";

export interface EifPcrs {
  PCR0: Uint8Array;
  PCR1: Uint8Array;
  PCR2: Uint8Array;
  /** Present only for a signed image. */
  PCR8?: Uint8Array;
}

const ZEROS = new Uint8Array(48);

async function extendOnce(...stream: Uint8Array[]): Promise<Uint8Array> {
  return sha384(concatBytes(ZEROS, await sha384(concatBytes(...stream))));
}

/** Only section data is measured: not the header, section headers, metadata or signature. */
export async function computeEifPcrs(image: Uint8Array | Eif): Promise<EifPcrs> {
  const eif = image instanceof Uint8Array ? parseEif(image) : image;
  const [boot, ...apps] = eif.ramdisks;
  const pcrs: EifPcrs = {
    PCR0: await extendOnce(eif.kernel, eif.cmdline, ...eif.ramdisks),
    PCR1: await extendOnce(eif.kernel, eif.cmdline, boot!),
    PCR2: await extendOnce(...apps),
  };
  if (eif.signature !== undefined)
    pcrs.PCR8 = await extendOnce(parseEifSignature(eif.signature).certificateDer);
  return pcrs;
}
