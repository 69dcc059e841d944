/**
 * SEV-SNP verification throughput on a real vector: cold (chain cache cleared before every
 * verification: RSA-PSS chain + ECDSA) and warm (cached chain: the report ECDSA check only).
 * Run: npx tsc -p tsconfig.build.json && node dist/scripts/bench/snp-verify.js [seconds]
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { clearChainCache, parseCertificate, toDer, verifySnp } from "../../attestation/snp/index.js";

const VECTOR = "milan-oak-v3";

/** The vectors live beside the checkout: <repo>/../shared/vectors (found from src or dist). */
function vectorDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("snp-verify bench: repository root not found");
    dir = up;
  }
  return resolve(dir, "..", "shared", "vectors", "sev-snp", VECTOR);
}

async function rate(seconds: number, before: () => void, once: () => Promise<void>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) {
    before();
    await once();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

export async function benchSnpVerify(seconds: number): Promise<{ coldPerSec: number; warmPerSec: number }> {
  const dir = vectorDir();
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
    if (!res.verified) throw new Error("snp-verify bench: the vector did not verify");
  };
  const coldPerSec = await rate(seconds / 2, clearChainCache, once);
  await once();
  const warmPerSec = await rate(seconds / 2, () => {}, once);
  return { coldPerSec, warmPerSec };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const seconds = Number(process.argv[2] ?? 4);
  const { coldPerSec, warmPerSec } = await benchSnpVerify(seconds);
  console.log(`snp verify (${VECTOR}): cold ${coldPerSec.toFixed(0)}/s, warm ${warmPerSec.toFixed(0)}/s`);
}
