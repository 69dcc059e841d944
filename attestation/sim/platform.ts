/**
 * The whole simulated platform (AMD chain + Nitro root + the simulated image's measurements)
 * and its persisted form: a few named text files, so `cleanroom sim init DIR` and the enclave's
 * simulated provider share one layout without attestation/ touching a filesystem.
 */
import { toHex } from "../bytes.js";
import { x509 } from "../x509.js";
import {
  createSimAmdChain,
  exportSimAmdChain,
  importSimAmdChain,
  type SimAmdChain,
  type SimAmdExport,
  type SimProduct,
} from "./amd.js";
import { createSimNitroRoot, type SimNitroRoot, simImagePcrs } from "./nitro.js";
import { simMeasurement } from "./snp.js";

export interface SimPlatform {
  amd: SimAmdChain;
  nitro: SimNitroRoot;
  measurement: Uint8Array;
}

/** File names inside a simulated-platform directory. */
export const SIM_FILES = {
  /** Private: the simulated VCEK and Nitro root keys. Never commit or share it. */
  secrets: "platform-secrets.json",
  /** Public: both simulated roots, what a verifier passes to --trust-sim-root. */
  roots: "sim-roots.pem",
  /** Public: the measurement and PCRs a verifier should expect from the simulated image. */
  expected: "expected.json",
} as const;

export interface SimExpected {
  measurement: string;
  pcrs: Record<number, string>;
}

export async function createSimPlatform(opts: { product?: SimProduct } = {}): Promise<SimPlatform> {
  const [amd, nitro, measurement] = await Promise.all([
    createSimAmdChain(opts.product ? { product: opts.product } : {}),
    createSimNitroRoot(),
    simMeasurement(),
  ]);
  return { amd, nitro, measurement };
}

export function simExpected(p: SimPlatform): SimExpected {
  const pcrs: Record<number, string> = {};
  for (const i of [0, 1, 2]) pcrs[i] = toHex(p.nitro.pcrs.get(i)!);
  return { measurement: toHex(p.measurement), pcrs };
}

export async function exportSimPlatform(p: SimPlatform): Promise<Record<string, string>> {
  const nitroKey = new Uint8Array(await crypto.subtle.exportKey("pkcs8", p.nitro.rootKey));
  const secrets = {
    amd: await exportSimAmdChain(p.amd),
    nitro: {
      rootPem: p.nitro.root.toString("pem"),
      rootKeyPkcs8: x509.PemConverter.encode(nitroKey.buffer, "PRIVATE KEY"),
    },
  };
  return {
    [SIM_FILES.secrets]: `${JSON.stringify(secrets, null, 2)}\n`,
    [SIM_FILES.roots]: `${p.amd.ark.toString("pem")}\n${p.nitro.root.toString("pem")}\n`,
    [SIM_FILES.expected]: `${JSON.stringify(simExpected(p), null, 2)}\n`,
  };
}

export async function importSimPlatform(secretsJson: string): Promise<SimPlatform> {
  const s = JSON.parse(secretsJson) as {
    amd: SimAmdExport;
    nitro: { rootPem: string; rootKeyPkcs8: string };
  };
  const rootKey = await crypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(s.nitro.rootKeyPkcs8),
    { name: "ECDSA", namedCurve: "P-384" },
    false,
    ["sign"],
  );
  return {
    amd: await importSimAmdChain(s.amd),
    nitro: { root: new x509.X509Certificate(s.nitro.rootPem), rootKey, pcrs: await simImagePcrs() },
    measurement: await simMeasurement(),
  };
}
