/**
 * Measurement 3: evidence verifications per second on real vectors (../shared/vectors), each at
 * a time inside its own certificates' validity. Warm: the verified chain is cached, so a
 * verification is one signature check plus parsing. Cold: the chain is verified again every
 * time. SEV-SNP: clearChainCache() before each, as for a chip never seen before; what stays is
 * per process, not per chip (the pinned AMD root's self-signature and its signature over the
 * pinned ASK, checked on first use), so cold is the VCEK's parse and signature under the ASK,
 * its key's import and the report signature. Nitro has no such hook, so each cold run uses a
 * fresh instance of attestation/nitro/verify.js, whose module-level cache starts empty.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { decodeAttestationPayload, decodeCoseSign1, parseNitro } from "../../attestation/nitro/index.js";
import type { NitroVerifyOptions, verifyNitroEvidence } from "../../attestation/nitro/verify.js";
import { clearChainCache, parseCertificate, toDer, verifySnp } from "../../attestation/snp/index.js";

export const SNP_VECTOR = "milan-oak-v3";
/** Production (non-debug) document in the current NSM encoding. */
export const NITRO_VECTOR = "dstack-2025-12-25-indefinite-map";

/** The vectors live beside the checkout: <repo>/../shared/vectors (found from src or dist). */
export function vectorsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("bench: repository root not found");
    dir = up;
  }
  return resolve(dir, "..", "shared", "vectors");
}

async function rate(seconds: number, before: () => void, once: () => Promise<void>): Promise<number> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    before();
    await once();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

export interface VerifyRates {
  vector: string;
  coldPerSec: number;
  warmPerSec: number;
}

export async function benchSnpVerify(seconds: number): Promise<VerifyRates> {
  const dir = join(vectorsDir(), "sev-snp", SNP_VECTOR);
  const read = (f: string): Uint8Array => new Uint8Array(readFileSync(join(dir, f)));
  const evidence = {
    report: read("report.bin"),
    vcek: read("vcek.der"),
    ask: read("ask.pem"),
    ark: read("ark.pem"),
  };
  const at = new Date(parseCertificate(toDer(evidence.vcek)).notBefore.getTime() + 86_400_000);
  const once = async (): Promise<void> => {
    const res = await verifySnp(evidence, { at });
    if (!res.verified) throw new Error("bench: the SEV-SNP vector did not verify");
  };
  const coldPerSec = await rate(seconds / 2, clearChainCache, once);
  await once();
  const warmPerSec = await rate(seconds / 2, () => {}, once);
  return { vector: SNP_VECTOR, coldPerSec, warmPerSec };
}

type NitroVerifier = typeof verifyNitroEvidence;

export async function benchNitroVerify(seconds: number, coldRuns = 50 * seconds): Promise<VerifyRates> {
  const bytes = new Uint8Array(readFileSync(join(vectorsDir(), "nitro", NITRO_VECTOR, "attestation.cbor")));
  const options: NitroVerifyOptions = {
    at: new Date(decodeAttestationPayload(decodeCoseSign1(bytes).payload).timestamp),
  };
  const once = async (verify: NitroVerifier): Promise<void> => {
    await verify(parseNitro(bytes), options);
  };
  // Fresh module instances are made before timing, so loading them is not counted.
  const url = new URL("../../attestation/nitro/verify.js", import.meta.url).href;
  const fresh: NitroVerifier[] = [];
  for (let i = 0; i < coldRuns; i++) fresh.push((await import(`${url}?cold=${i}`)).verifyNitroEvidence);
  const start = performance.now();
  for (const verify of fresh) await once(verify);
  const coldPerSec = coldRuns / ((performance.now() - start) / 1000);
  const shared = fresh[0]!;
  const warmPerSec = await rate(
    seconds / 2,
    () => {},
    () => once(shared),
  );
  return { vector: NITRO_VECTOR, coldPerSec, warmPerSec };
}
