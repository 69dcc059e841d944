/**
 * A fake configfs-tsm kernel over a real temporary folder. A plain directory does not answer an
 * inblob write with a report, so this TsmFs does what drivers/virt/coco/tsm.c and sev-guest do:
 * mkdir fills the entry with `provider` and `generation`; every inblob/privlevel write bumps the
 * generation; reading outblob or auxblob after a write generates a report over the inblob,
 * signed by a simulated VCEK (real P-384), with the certificate table in auxblob.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { SimAmdChain } from "../../attestation/sim/amd.js";
import { signSimReport } from "../../attestation/sim/snp.js";
import { encodeCertTable, GUID_ARK, GUID_ASK, GUID_VCEK } from "../../attestation/snp/certtable.js";
import type { TsmFs } from "../../enclave/platform/configfs-tsm.js";

interface EntryState {
  generation: number;
  /** Generation the cached report was made for; -1 before the first report. */
  reportGeneration: number;
  inblob: Uint8Array;
  outblob?: Uint8Array;
  auxblob?: Uint8Array;
}

export interface FakeTsmOptions {
  chain: SimAmdChain;
  measurement: Uint8Array;
  provider?: string;
  /** Put the VCEK/ASK/ARK table in auxblob (default true); false leaves auxblob empty. */
  certificates?: boolean;
  /** Serve these recorded kernel answers (a real report) instead of signing one. */
  recorded?: { outblob: Uint8Array; auxblob: Uint8Array };
  /** Serve only the first bytes of each report. */
  truncateOutblob?: number;
  /** Runs before each operation: delays, or a rogue writer poking at an entry. */
  hook?: (op: "mkdir" | "rmdir" | "read" | "write", path: string) => Promise<void>;
}

export class FakeTsm implements TsmFs {
  readonly entries = new Map<string, EntryState>();
  /** Every entry ever made and every entry removed, in order. */
  readonly made: string[] = [];
  readonly removed: string[] = [];
  /** Highest number of entries alive at once. */
  maxAlive = 0;

  constructor(private readonly opts: FakeTsmOptions) {}

  async mkdir(path: string): Promise<void> {
    await this.opts.hook?.("mkdir", path);
    await mkdir(path); // ENOENT when the root is missing, as on a guest without configfs-tsm
    await writeFile(join(path, "provider"), `${this.opts.provider ?? "sev_guest"}\n`);
    this.entries.set(path, { generation: 0, reportGeneration: -1, inblob: new Uint8Array() });
    await this.syncGeneration(path);
    this.made.push(path);
    this.maxAlive = Math.max(this.maxAlive, this.entries.size);
  }

  async rmdir(path: string): Promise<void> {
    await this.opts.hook?.("rmdir", path);
    // configfs removes an item with its attribute files; a plain folder needs them removed first.
    await rm(path, { recursive: true });
    this.entries.delete(path);
    this.removed.push(path);
  }

  async writeFile(path: string, data: Uint8Array): Promise<void> {
    await this.opts.hook?.("write", path);
    const state = this.state(path);
    const name = basename(path);
    if (name === "inblob") {
      if (data.length > 64) throw Object.assign(new Error("inblob too large"), { code: "EINVAL" });
      state.inblob = data.slice();
    } else if (name === "privlevel") {
      if (!/^[0-3]\n?$/.test(new TextDecoder().decode(data))) {
        throw Object.assign(new Error("bad privlevel"), { code: "EINVAL" });
      }
    } else {
      throw Object.assign(new Error("read-only attribute"), { code: "EACCES" });
    }
    state.generation++;
    await writeFile(path, data);
    await this.syncGeneration(dirname(path));
  }

  async readFile(path: string): Promise<Uint8Array> {
    await this.opts.hook?.("read", path);
    const name = basename(path);
    if (name === "outblob" || name === "auxblob") {
      const state = this.state(path);
      if (state.inblob.length === 0) throw Object.assign(new Error("no inblob"), { code: "EINVAL" });
      if (state.reportGeneration !== state.generation) await this.generate(state);
      return (name === "outblob" ? state.outblob : state.auxblob)!;
    }
    return new Uint8Array(await readFile(path));
  }

  private state(attributePath: string): EntryState {
    const state = this.entries.get(dirname(attributePath));
    if (!state) throw Object.assign(new Error("no such entry"), { code: "ENOENT" });
    return state;
  }

  private async syncGeneration(entry: string): Promise<void> {
    await writeFile(join(entry, "generation"), `${this.entries.get(entry)!.generation}\n`);
  }

  private async generate(state: EntryState): Promise<void> {
    const { chain, measurement, recorded } = this.opts;
    // sev-guest refuses anything but exactly 64 bytes of report data.
    if (state.inblob.length !== 64) throw Object.assign(new Error("short inblob"), { code: "EINVAL" });
    const generation = state.generation;
    const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);
    const report =
      recorded?.outblob ?? (await signSimReport(chain, { reportData: state.inblob, measurement }));
    state.outblob =
      this.opts.truncateOutblob === undefined ? report : report.slice(0, this.opts.truncateOutblob);
    state.auxblob =
      recorded?.auxblob ??
      (this.opts.certificates === false
        ? new Uint8Array()
        : encodeCertTable([
            { guid: GUID_VCEK, data: der(chain.vcek) },
            { guid: GUID_ASK, data: der(chain.ask) },
            { guid: GUID_ARK, data: der(chain.ark) },
          ]));
    state.reportGeneration = generation;
  }
}
