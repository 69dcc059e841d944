import { mkdir, mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { EvidenceFormatError, UsageError } from "../../attestation/errors.js";
import { verifyEvidence } from "../../attestation/evidence.js";
import { createSimAmdChain, type SimAmdChain } from "../../attestation/sim/amd.js";
import { simMeasurement } from "../../attestation/sim/snp.js";
import { encodeCertTable, GUID_VLEK } from "../../attestation/snp/certtable.js";
import { parseReport } from "../../attestation/snp/report.js";
import { createConfigfsTsmProvider, type TsmFs } from "../../enclave/platform/configfs-tsm.js";
import { PlatformError, type PlatformFailure } from "../../enclave/platform/platform-error.js";
import { loadVector } from "../snp/vectors.js";
import { FakeTsm, type FakeTsmOptions } from "./fake-tsm.js";

let chain: SimAmdChain;
let measurement: Uint8Array;

beforeAll(async () => {
  chain = await createSimAmdChain({ product: "Milan" });
  measurement = await simMeasurement();
});

async function freshRoot(): Promise<string> {
  const root = join(await mkdtemp(join(tmpdir(), "tsm-")), "report");
  await mkdir(root);
  return root;
}

function reportData(fill: number): Uint8Array {
  return new Uint8Array(64).map((_, i) => (fill + i) & 0xff);
}

async function setup(opts: Partial<FakeTsmOptions> = {}, timeoutMs?: number) {
  const root = await freshRoot();
  const fake = new FakeTsm({ chain, measurement, ...opts });
  const provider = createConfigfsTsmProvider({ root, fs: fake, ...(timeoutMs ? { timeoutMs } : {}) });
  return { root, fake, provider };
}

async function platformFailure(p: Promise<unknown>): Promise<PlatformFailure> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PlatformError);
  expect((e as PlatformError).code).toBe("ERR_PLATFORM");
  return (e as PlatformError).reason;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("configfs-tsm provider against a fake kernel", () => {
  it("returns the report over the asked report data, with the certificates, and it verifies", async () => {
    const { root, fake, provider } = await setup();
    expect(provider.platform).toBe("sev-snp");
    expect(provider.simulated).toBe(false);
    const data = reportData(7);
    const ev = await provider.getEvidence(data, new Uint8Array(16));
    expect(ev.platform).toBe("sev-snp");
    expect(toHex(parseReport(ev.evidence).reportData)).toBe(toHex(data));
    expect(toHex(ev.certificates!.vcek!)).toBe(toHex(new Uint8Array(chain.vcek.rawData)));
    expect(toHex(ev.certificates!.ask!)).toBe(toHex(new Uint8Array(chain.ask.rawData)));
    expect(toHex(ev.certificates!.ark!)).toBe(toHex(new Uint8Array(chain.ark.rawData)));
    // The evidence as returned verifies end to end against the simulated root.
    const result = await verifyEvidence(
      ev,
      { trustedSimRoots: [new Uint8Array(chain.ark.rawData)], measurements: [toHex(measurement)] },
      data,
    );
    expect(result.errors).toEqual([]);
    expect(result.verified).toBe(true);
    // One entry, made and removed; nothing left under the root.
    expect(fake.made).toHaveLength(1);
    expect(fake.removed).toEqual(fake.made);
    expect(await readdir(root)).toEqual([]);
    expect(basename(fake.made[0]!)).toMatch(/^cleanroom-\d+-[0-9a-f-]{36}$/);
  });

  it("carries a real hardware report and its VLEK from the certificate table to a passing verification", async () => {
    const v = loadVector("milan-aws-vlek-v3");
    const auxblob = encodeCertTable([{ guid: GUID_VLEK, data: v.leaf }]);
    // This report is from VMPL 1 (AWS runs the guest kernel under an SVSM-like layer): ask for it.
    const root = await freshRoot();
    const fake = new FakeTsm({ chain, measurement, recorded: { outblob: v.report, auxblob } });
    const provider = createConfigfsTsmProvider({ root, fs: fake, privlevel: 1 });
    const asked = parseReport(v.report).reportData;
    const ev = await provider.getEvidence(asked, new Uint8Array(16));
    expect(toHex(ev.certificates!.vcek!)).toBe(toHex(v.leaf));
    // Its REPORTED_TCB microcode (217) is below the shipped Milan minimum (219): refused by default,
    // naming the component; an operator who accepts that microcode says so explicitly.
    const byDefault = await verifyEvidence(
      ev,
      { at: v.at, allowAnyMeasurement: true, snp: { maxVmpl: 1 } },
      asked,
    );
    expect(byDefault.errors).toEqual([
      { code: "ERR_TCB", message: "policy: reported TCB below the minimum: microcode" },
    ]);
    const result = await verifyEvidence(
      ev,
      { at: v.at, allowAnyMeasurement: true, snp: { maxVmpl: 1, minimumTcb: { snp: 24, ucode: 217 } } },
      asked,
    );
    expect(result.errors).toEqual([]);
    expect(result.verified).toBe(true);
    // The same recorded answer to any other request is refused.
    expect(await platformFailure(provider.getEvidence(reportData(0), new Uint8Array(16)))).toBe("bad-output");
  });

  it("returns no certificates when the host supplied none (empty auxblob)", async () => {
    const { provider } = await setup({ certificates: false });
    const ev = await provider.getEvidence(reportData(1), new Uint8Array(16));
    expect(ev.certificates).toBeUndefined();
    expect(ev.evidence).toHaveLength(1184);
  });

  it("writes privlevel before inblob and counts it in the generation check", async () => {
    const root = await freshRoot();
    const writes: string[] = [];
    const fake = new FakeTsm({
      chain,
      measurement,
      hook: async (op, path) => {
        if (op === "write")
          writes.push(
            `${basename(path)}=${(await readFile(join(path, "..", "generation"))).toString().trim()}`,
          );
      },
    });
    const provider = createConfigfsTsmProvider({ root, fs: fake, privlevel: 0 });
    const ev = await provider.getEvidence(reportData(2), new Uint8Array(16));
    expect(parseReport(ev.evidence).vmpl).toBe(0);
    expect(writes).toEqual(["privlevel=0", "inblob=1"]);
  });

  it("refuses a report whose VMPL is not the privlevel asked", async () => {
    // The fake signs every report at VMPL 0, as a kernel ignoring privlevel would.
    const root = await freshRoot();
    const fake = new FakeTsm({ chain, measurement });
    const provider = createConfigfsTsmProvider({ root, fs: fake, privlevel: 1 });
    expect(await platformFailure(provider.getEvidence(reportData(3), new Uint8Array(16)))).toBe("bad-output");
    expect(fake.removed).toEqual(fake.made);
  });

  it("refuses another TSM provider (e.g. TDX) and removes the entry", async () => {
    const { root, fake, provider } = await setup({ provider: "tdx_guest" });
    expect(await platformFailure(provider.getEvidence(reportData(4), new Uint8Array(16)))).toBe(
      "wrong-provider",
    );
    expect(fake.made).toHaveLength(1);
    expect(fake.removed).toEqual(fake.made);
    expect(await readdir(root)).toEqual([]);
  });

  it("retries with a fresh entry when a rogue writer races once, and returns our report", async () => {
    let raced = false;
    const { fake, provider } = await setup({
      hook: async (op, path) => {
        // Between our inblob write and our outblob read, someone writes another inblob.
        if (!raced && op === "read" && basename(path) === "outblob") {
          raced = true;
          await fake.writeFile(join(path, "..", "inblob"), new Uint8Array(64).fill(0xee));
        }
      },
    });
    const data = reportData(5);
    const ev = await provider.getEvidence(data, new Uint8Array(16));
    expect(toHex(parseReport(ev.evidence).reportData)).toBe(toHex(data));
    expect(fake.made).toHaveLength(2);
    expect(fake.removed).toEqual(fake.made);
  });

  it("refuses after repeated generation races, even when the rogue restores our inblob", async () => {
    const data = reportData(6);
    const { root, fake, provider } = await setup({
      hook: async (op, path) => {
        // Rewriting the very same bytes still bumps the generation: the check is about writes.
        if (op === "read" && basename(path) === "auxblob")
          await fake.writeFile(join(path, "..", "inblob"), data);
      },
    });
    expect(await platformFailure(provider.getEvidence(data, new Uint8Array(16)))).toBe("generation-race");
    expect(fake.made).toHaveLength(3);
    expect(fake.removed).toEqual(fake.made);
    expect(await readdir(root)).toEqual([]);
  });

  it("refuses a short outblob", async () => {
    const { fake, provider } = await setup({ truncateOutblob: 1000 });
    expect(await platformFailure(provider.getEvidence(reportData(8), new Uint8Array(16)))).toBe("bad-output");
    expect(fake.removed).toEqual(fake.made);
  });

  it("reports a missing configfs-tsm root as unavailable", async () => {
    const root = join(await freshRoot(), "absent");
    const viaFake = createConfigfsTsmProvider({ root, fs: new FakeTsm({ chain, measurement }) });
    expect(await platformFailure(viaFake.getEvidence(reportData(9), new Uint8Array(16)))).toBe("unavailable");
    // The default node:fs implementation sees the same.
    const viaNode = createConfigfsTsmProvider({ root });
    const e = await viaNode.getEvidence(reportData(9), new Uint8Array(16)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PlatformError);
    expect((e as PlatformError).reason).toBe("unavailable");
    expect((e as PlatformError).detail).toBe("ENOENT");
  });

  it("refuses a plain directory that is not configfs-tsm, and removes its entry", async () => {
    const root = await freshRoot();
    const provider = createConfigfsTsmProvider({ root });
    expect(await platformFailure(provider.getEvidence(reportData(10), new Uint8Array(16)))).toBe(
      "unavailable",
    );
    expect(await readdir(root)).toEqual([]);
  });

  it("maps a kernel refusal of the report to 'refused' with the errno, and removes the entry", async () => {
    const { fake, provider } = await setup({
      hook: async (op, path) => {
        if (op === "read" && basename(path) === "outblob") {
          throw Object.assign(new Error("firmware said no"), { code: "EIO" });
        }
      },
    });
    const e = await provider.getEvidence(reportData(11), new Uint8Array(16)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PlatformError);
    expect((e as PlatformError).reason).toBe("refused");
    expect((e as PlatformError).detail).toBe("EIO");
    expect(fake.removed).toEqual(fake.made);
  });

  it("reports a leaked entry after an otherwise good report", async () => {
    const root = await freshRoot();
    const inner = new FakeTsm({ chain, measurement });
    const leaky: TsmFs = {
      mkdir: (p) => inner.mkdir(p),
      readFile: (p) => inner.readFile(p),
      writeFile: (p, d) => inner.writeFile(p, d),
      rmdir: async () => {
        throw Object.assign(new Error("busy"), { code: "EBUSY" });
      },
    };
    const provider = createConfigfsTsmProvider({ root, fs: leaky });
    expect(await platformFailure(provider.getEvidence(reportData(12), new Uint8Array(16)))).toBe("refused");
  });

  it("refuses report data that is not 64 bytes and bad options, before touching configfs", async () => {
    const { fake, provider } = await setup();
    await expect(provider.getEvidence(new Uint8Array(32), new Uint8Array(16))).rejects.toBeInstanceOf(
      UsageError,
    );
    expect(fake.made).toEqual([]);
    expect(() => createConfigfsTsmProvider({ privlevel: 4 })).toThrow(UsageError);
    expect(() => createConfigfsTsmProvider({ privlevel: 0.5 })).toThrow(UsageError);
    expect(() => createConfigfsTsmProvider({ timeoutMs: 0 })).toThrow(UsageError);
  });

  it("passes a malformed certificate table up as an evidence format error", async () => {
    const root = await freshRoot();
    const inner = new FakeTsm({ chain, measurement });
    const badTable: TsmFs = {
      mkdir: (p) => inner.mkdir(p),
      rmdir: (p) => inner.rmdir(p),
      writeFile: (p, d) => inner.writeFile(p, d),
      readFile: async (p) => (basename(p) === "auxblob" ? new Uint8Array(24).fill(1) : inner.readFile(p)),
    };
    const provider = createConfigfsTsmProvider({ root, fs: badTable });
    await expect(provider.getEvidence(reportData(13), new Uint8Array(16))).rejects.toBeInstanceOf(
      EvidenceFormatError,
    );
    expect(inner.removed).toEqual(inner.made);
  });

  it("runs concurrent calls one at a time, each getting its own report", async () => {
    const { root, fake, provider } = await setup({ hook: () => sleep(2) });
    const asks = [20, 21, 22, 23, 24].map(reportData);
    const evs = await Promise.all(asks.map((d) => provider.getEvidence(d, new Uint8Array(16))));
    expect(fake.maxAlive).toBe(1);
    expect(evs.map((e) => toHex(parseReport(e.evidence).reportData))).toEqual(asks.map(toHex));
    expect(fake.made).toHaveLength(5);
    expect(await readdir(root)).toEqual([]);
  });

  it("a failed call does not stop the queue", async () => {
    let fail = true;
    const { provider } = await setup({
      hook: async (op) => {
        if (op === "mkdir" && fail) {
          fail = false;
          throw Object.assign(new Error("no"), { code: "EACCES" });
        }
      },
    });
    const [first, second] = await Promise.allSettled([
      provider.getEvidence(reportData(30), new Uint8Array(16)),
      provider.getEvidence(reportData(31), new Uint8Array(16)),
    ]);
    expect(first.status).toBe("rejected");
    expect(second.status).toBe("fulfilled");
  });

  it("times out a stuck call, which keeps its turn; the next call then succeeds", async () => {
    let stall = true;
    const { root, fake, provider } = await setup(
      {
        hook: async (op, path) => {
          if (stall && op === "read" && basename(path) === "outblob") {
            stall = false;
            await sleep(300);
          }
        },
      },
      100,
    );
    const first = provider.getEvidence(reportData(40), new Uint8Array(16));
    const second = provider.getEvidence(reportData(41), new Uint8Array(16));
    expect(await platformFailure(first)).toBe("timeout");
    // The second waited behind the stalled one past its own limit.
    expect(await platformFailure(second)).toBe("timeout");
    await sleep(400);
    expect(fake.maxAlive).toBe(1);
    const third = await provider.getEvidence(reportData(42), new Uint8Array(16));
    expect(toHex(parseReport(third.evidence).reportData)).toBe(toHex(reportData(42)));
    expect(fake.removed).toEqual(fake.made);
    expect(await readdir(root)).toEqual([]);
  });
});
