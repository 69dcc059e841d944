/**
 * SEV-SNP evidence from the Linux configfs-tsm report interface
 * (Documentation/ABI/testing/configfs-tsm-report, kernel 6.7+): no ioctl and no native addon.
 * Each request gets its own entry under the report directory, so other agents in the guest never
 * share it; the generation counter still proves that nobody wrote into our entry between our
 * inblob write and our outblob read, as the ABI document prescribes.
 */
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bytesEqual } from "../../attestation/bytes.js";
import { UsageError } from "../../attestation/errors.js";
import type { Evidence, SnpCertificates } from "../../attestation/evidence.js";
import { certsFromTable, parseCertTable } from "../../attestation/snp/certtable.js";
import { parseReport, REPORT_SIZE } from "../../attestation/snp/report.js";
import { errnoName, PlatformError } from "./platform-error.js";
import type { EvidenceProvider } from "./provider.js";

export const DEFAULT_TSM_ROOT = "/sys/kernel/config/tsm/report";
/** The `provider` attribute names the kernel module serving the reports (KBUILD_MODNAME). */
export const SEV_GUEST_PROVIDER = "sev_guest";
/** The kernel itself retries a throttled guest request for up to 60 s. */
const DEFAULT_TIMEOUT_MS = 90_000;
/** Tries with a fresh entry when the generation check fails, then give up. */
const ATTEMPTS = 3;
const PRIVLEVEL_MAX = 3;
const REPORT_DATA_BYTES = 64;

/** The few file operations the provider needs; node:fs/promises by default, a fake in tests. */
export interface TsmFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
}

export const nodeTsmFs: TsmFs = {
  mkdir: async (path) => {
    await mkdir(path);
  },
  rmdir: (path) => rmdir(path),
  readFile: async (path) => {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  // writeFile opens, writes and closes: configfs commits a binary attribute on close.
  writeFile: (path, data) => writeFile(path, data),
};

export interface ConfigfsTsmOptions {
  /** The configfs-tsm report directory. */
  root?: string;
  /** SEV-SNP VMPL to request (0..3); required under an SVSM, where the guest kernel is not VMPL 0. */
  privlevel?: number;
  /** Bound on one getEvidence call, queueing included. Default 90 s. */
  timeoutMs?: number;
  fs?: TsmFs;
}

function fsFailure(e: unknown, missing: string): PlatformError {
  if (e instanceof PlatformError) return e;
  const errno = errnoName(e);
  const options = errno ? { cause: e, detail: errno } : { cause: e };
  switch (errno) {
    case "ENOENT":
      return new PlatformError("unavailable", missing, options);
    case "ENXIO":
      return new PlatformError("unavailable", "configfs-tsm: no TSM provider registered", options);
    case "EACCES":
    case "EPERM":
      return new PlatformError("unavailable", "configfs-tsm: permission denied", options);
    default:
      return new PlatformError("refused", "configfs-tsm: the kernel refused the report request", options);
  }
}

async function attempt<T>(
  op: () => Promise<T>,
  missing = "configfs-tsm: report attribute not found",
): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw fsFailure(e, missing);
  }
}

const ascii = (b: Uint8Array): string => new TextDecoder().decode(b).replace(/\n$/, "");

function generation(b: Uint8Array): number {
  const text = ascii(b);
  if (!/^\d{1,15}$/.test(text)) {
    throw new PlatformError("bad-output", "configfs-tsm: generation is not a number");
  }
  return Number(text);
}

interface RawReport {
  outblob: Uint8Array;
  auxblob: Uint8Array;
}

/** One request in a fresh entry, removed afterwards whatever happened. */
async function requestOnce(
  fs: TsmFs,
  root: string,
  reportData: Uint8Array,
  privlevel: number | undefined,
): Promise<RawReport> {
  const entry = join(root, `cleanroom-${process.pid}-${randomUUID()}`);
  const at = (name: string): string => join(entry, name);
  await attempt(() => fs.mkdir(entry), "configfs-tsm: report directory not found");
  let result: RawReport | undefined;
  let failure: unknown;
  try {
    const provider = ascii(await attempt(() => fs.readFile(at("provider"))));
    if (provider !== SEV_GUEST_PROVIDER) {
      throw new PlatformError("wrong-provider", "configfs-tsm: provider is not sev_guest");
    }
    const before = generation(await attempt(() => fs.readFile(at("generation"))));
    let writes = 0;
    if (privlevel !== undefined) {
      await attempt(() => fs.writeFile(at("privlevel"), new TextEncoder().encode(`${privlevel}\n`)));
      writes++;
    }
    await attempt(() => fs.writeFile(at("inblob"), reportData));
    writes++;
    const outblob = await attempt(() => fs.readFile(at("outblob")));
    const auxblob = await attempt(() => fs.readFile(at("auxblob")));
    // Every write bumps the generation; any count but ours means someone else wrote in between.
    if (generation(await attempt(() => fs.readFile(at("generation")))) !== before + writes) {
      throw new PlatformError("generation-race", "configfs-tsm: another writer changed the request");
    }
    result = { outblob, auxblob };
  } catch (e) {
    failure = e;
  }
  try {
    await fs.rmdir(entry);
  } catch (e) {
    // The first failure is the one worth reporting; a leaked entry after a success is reported.
    if (failure === undefined && errnoName(e) !== "ENOENT") {
      throw fsFailure(e, "configfs-tsm: report entry vanished");
    }
  }
  if (result === undefined) throw failure;
  return result;
}

function toEvidence(raw: RawReport, reportData: Uint8Array, privlevel: number | undefined): Evidence {
  if (raw.outblob.length !== REPORT_SIZE) {
    throw new PlatformError("bad-output", "configfs-tsm: outblob is not a 1184-byte report");
  }
  const report = parseReport(raw.outblob);
  if (!bytesEqual(report.reportData, reportData)) {
    throw new PlatformError("bad-output", "configfs-tsm: report answers another request");
  }
  if (privlevel !== undefined && report.vmpl !== privlevel) {
    throw new PlatformError("bad-output", "configfs-tsm: report VMPL differs from the privlevel asked");
  }
  const evidence: Evidence = { platform: "sev-snp", evidence: raw.outblob };
  // An empty auxblob means the host supplied no certificates: the verifier uses its cache or KDS.
  if (raw.auxblob.length > 0) {
    const table = certsFromTable(parseCertTable(raw.auxblob));
    const certificates: SnpCertificates = {};
    const vcek = table.vcek ?? table.vlek;
    if (vcek) certificates.vcek = vcek;
    if (table.ask) certificates.ask = table.ask;
    if (table.ark) certificates.ark = table.ark;
    if (Object.keys(certificates).length > 0) evidence.certificates = certificates;
  }
  return evidence;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PlatformError("timeout", "configfs-tsm: no report within the time limit")),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * SEV-SNP evidence over configfs-tsm. Calls run one at a time: the guest firmware channel is
 * serial anyway, and a call that timed out keeps its turn until the kernel answers it.
 */
export function createConfigfsTsmProvider(opts: ConfigfsTsmOptions = {}): EvidenceProvider {
  const root = opts.root ?? DEFAULT_TSM_ROOT;
  const fs = opts.fs ?? nodeTsmFs;
  const { privlevel } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (
    privlevel !== undefined &&
    (!Number.isInteger(privlevel) || privlevel < 0 || privlevel > PRIVLEVEL_MAX)
  ) {
    throw new UsageError("configfs-tsm: privlevel must be an integer 0..3");
  }
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError("configfs-tsm: timeoutMs must be a positive integer");
  }

  const produce = async (reportData: Uint8Array): Promise<Evidence> => {
    for (let i = 1; ; i++) {
      try {
        return toEvidence(await requestOnce(fs, root, reportData, privlevel), reportData, privlevel);
      } catch (e) {
        if (!(e instanceof PlatformError && e.reason === "generation-race" && i < ATTEMPTS)) throw e;
      }
    }
  };

  let tail: Promise<unknown> = Promise.resolve();
  return {
    platform: "sev-snp",
    simulated: false,
    getEvidence(reportData: Uint8Array): Promise<Evidence> {
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_BYTES) {
        return Promise.reject(new UsageError("configfs-tsm: report data is not 64 bytes"));
      }
      const ours = reportData.slice();
      const run = tail.then(() => produce(ours));
      tail = run.catch(() => undefined);
      return withTimeout(run, timeoutMs);
    },
  };
}
