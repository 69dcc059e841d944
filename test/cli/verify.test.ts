import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { concatBytes, sha384, toHex } from "../../attestation/bytes.js";
import { parseNitro } from "../../attestation/nitro/index.js";
import { createSimAmdChain, type SimAmdChain, signSimCrl } from "../../attestation/sim/amd.js";
import { signSimReport } from "../../attestation/sim/snp.js";
import { crlUrl } from "../../attestation/snp/kds.js";
import { registerVerifyCommand } from "../../client/cli/commands/verify.js";
import {
  VECTORS as NITRO_URL,
  tampered as nitroTampered,
  vectors as nitroVectors,
  timestampOf,
} from "../nitro/helpers.js";
import { loadVector, TCB_BY_DEFAULT, VECTOR_NAMES } from "../snp/vectors.js";
import { runCli } from "./run.js";

const NITRO_DIR = fileURLToPath(NITRO_URL);
const verify = (args: string[]) => runCli(registerVerifyCommand, ["verify", ...args]);

function snpArgs(name: string): string[] {
  const v = loadVector(name);
  const leaf = v.files.find((f) => f === "vcek.der" || f === "vlek.der")!;
  const ask = v.files.find((f) => f === "ask.pem" || f === "asvk.pem")!;
  const extra = name === "milan-aws-vlek-v3" ? ["--max-vmpl", "1"] : [];
  return [
    `${v.dir}report.bin`,
    "--vcek",
    v.dir + leaf,
    "--ask",
    v.dir + ask,
    "--ark",
    `${v.dir}ark.pem`,
    "--at",
    v.at.toISOString(),
    ...extra,
  ];
}

describe("cleanroom verify (SEV-SNP)", () => {
  for (const name of VECTOR_NAMES) {
    const debug = name.includes("debug");
    const low = TCB_BY_DEFAULT[name];
    const title = low ? `refused by default (TCB below: ${low}), verifies with --min-tcb none` : "verifies";
    it(`${name}: ${debug ? `${title} and --allow-debug` : title}`, async () => {
      const r = await verify([...snpArgs(name), "--json"]);
      const json = JSON.parse(r.stdout);
      expect(json.platform).toBe("sev-snp");
      expect(r.code).toBe(debug || low ? 1 : 0);
      expect(json.verified).toBe(!debug && !low);
      const codes = json.errors.map((e: { code: string }) => e.code);
      expect(codes).toEqual([...(debug ? ["ERR_POLICY"] : []), ...(low ? ["ERR_TCB"] : [])]);
      if (low) {
        expect(json.errors.at(-1).message).toBe(`policy: reported TCB below the minimum: ${low}`);
        const accepted = await verify([
          ...snpArgs(name),
          "--min-tcb",
          "none",
          ...(debug ? ["--allow-debug"] : []),
        ]);
        expect(accepted.code).toBe(0);
        expect(accepted.stdout).toMatch(/✓ minimum TCB — not checked/);
      } else if (debug) {
        expect((await verify([...snpArgs(name), "--allow-debug"])).code).toBe(0);
      } else {
        expect((await verify(snpArgs(name))).stdout).toMatch(/✓ minimum TCB — default \(AMD-SB-3019\)/);
      }
    });
  }

  it("refuses every tampered copy", async () => {
    const v = loadVector("milan-virtee-v2");
    const args = [...snpArgs("milan-virtee-v2").slice(1), "--min-tcb", "none"];
    for (const f of v.files.filter((x) => x.startsWith("report.tampered-"))) {
      const r = await verify([v.dir + f, ...args]);
      expect(r.code, f).toBe(1);
      expect(r.stdout).toMatch(/REFUSED/);
    }
  });

  it("prints one ✓ line per check and the claims", async () => {
    const r = await verify(snpArgs("turin-oak-v5"));
    expect(r.stdout).toMatch(/✓ report signature/);
    expect(r.stdout).toMatch(/measurement: [0-9a-f]{96}/);
    expect(r.stdout).toMatch(/VERIFIED/);
  });

  it("refuses a measurement that differs from --measurement", async () => {
    const r = await verify([...snpArgs("milan-oak-v3"), "--measurement", "00".repeat(48)]);
    expect(r.code).toBe(1);
  });

  it("refuses after the certificates expired", async () => {
    const args = [...snpArgs("milan-aws-vlek-v3"), "--min-tcb", "none"];
    args[args.indexOf("--at") + 1] = "2026-01-01T00:00:00Z";
    const r = await verify([...args, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).errors[0].code).toBe("ERR_CERTIFICATE");
  });

  it("exits 2 on usage and I/O errors", async () => {
    expect((await verify(["/nonexistent/report.bin"])).code).toBe(2);
    expect((await verify([...snpArgs("milan-oak-v3"), "--at", "yesterday"])).code).toBe(2);
    expect((await verify([...snpArgs("milan-oak-v3"), "--platform", "tdx"])).code).toBe(2);
  });

  it("refuses bytes that are neither format", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    writeFileSync(join(dir, "junk.bin"), "not evidence");
    const r = await verify([join(dir, "junk.bin"), "--json"]);
    expect(r.code).toBe(1);
  });
});

describe("cleanroom verify (Nitro)", () => {
  for (const v of nitroVectors) {
    it(`${v.name}: verifies at its own time${v.provenanceDebug ? " only with --allow-debug" : ""}`, async () => {
      const file = join(NITRO_DIR, v.name, "attestation.cbor");
      const at = timestampOf(v.bytes).toISOString();
      const r = await verify([file, "--at", at, "--json"]);
      expect(JSON.parse(r.stdout).platform).toBe("nitro");
      expect(r.code).toBe(v.provenanceDebug ? 1 : 0);
      if (v.provenanceDebug) expect((await verify([file, "--at", at, "--allow-debug"])).code).toBe(0);
    });
  }

  it("refuses every tampered document", async () => {
    for (const t of nitroTampered) {
      const r = await verify([
        join(NITRO_DIR, t.name),
        "--at",
        timestampOf(nitroVectors[0]!.bytes).toISOString(),
      ]);
      expect(r.code, t.name).toBe(1);
    }
  });

  it("checks --pcr values: PCR0, PCR1 and PCR2 pinned", async () => {
    const v = nitroVectors.find((x) => !x.provenanceDebug)!;
    const file = join(NITRO_DIR, v.name, "attestation.cbor");
    const at = timestampOf(v.bytes).toISOString();
    const pcrs = parseNitro(v.bytes).document.pcrs;
    const pin = (i: number, hex = toHex(pcrs.get(i)!)) => ["--pcr", `${i}=${hex}`];
    const image = [...pin(0), ...pin(1), ...pin(2)];
    expect((await verify([file, "--at", at, ...image])).code).toBe(0);
    expect((await verify([file, "--at", at, ...image, ...pin(0, "00".repeat(48))])).code).toBe(2); // twice
    expect((await verify([file, "--at", at, ...pin(0, "00".repeat(48)), ...pin(1), ...pin(2)])).code).toBe(1);
  });

  it("a policy that does not pin the image is refused before verification (exit 2)", async () => {
    const v = nitroVectors.find((x) => !x.provenanceDebug)!;
    const file = join(NITRO_DIR, v.name, "attestation.cbor");
    const at = timestampOf(v.bytes).toISOString();
    const pcrs = parseNitro(v.bytes).document.pcrs;
    const pin = (i: number) => ["--pcr", `${i}=${toHex(pcrs.get(i)!)}`];
    for (const args of [pin(0), pin(3), [...pin(0), ...pin(1)], [...pin(3), ...pin(4)], pin(8)]) {
      const r = await verify([file, "--at", at, ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(
        /^error ERR_USAGE: --pcr must pin PCR0, PCR1 and PCR2, or PCR8 together with --signing-cert/,
      );
      expect(r.stdout).toBe("");
    }
    // A signing certificate that is not the one PCR8 was made from is the same configuration error.
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    writeFileSync(join(dir, "signer.pem"), readFileSync(join(NITRO_DIR, v.name, "root.pem")));
    const mismatch = await verify([file, "--at", at, ...pin(8), "--signing-cert", join(dir, "signer.pem")]);
    expect(mismatch.code).toBe(2);
    // Malformed PCR options.
    for (const bad of ["0=00", `32=${"00".repeat(48)}`, `00=${"00".repeat(48)}`, "x"]) {
      expect((await verify([file, "--at", at, "--pcr", bad])).code, bad).toBe(2);
    }
  });
});

describe("cleanroom verify: --min-tcb", () => {
  const vlek = () => snpArgs("milan-aws-vlek-v3"); // REPORTED_TCB bl 4, tee 0, snp 24, ucode 217
  const json = async (args: string[]) => {
    const r = await verify([...args, "--json"]);
    return {
      code: r.code,
      errors: JSON.parse(r.stdout || "{}").errors as { code: string; message: string }[],
    };
  };

  it("per component, for every product or one; later specs win", async () => {
    expect((await verify([...vlek(), "--min-tcb", "microcode=217"])).code).toBe(0);
    expect((await verify([...vlek(), "--min-tcb", "Milan:ucode=0xd9"])).code).toBe(0);
    expect((await verify([...vlek(), "--min-tcb", "Genoa:ucode=0"])).code).toBe(1);
    expect((await verify([...vlek(), "--min-tcb", "ucode=217", "--min-tcb", "Milan:default"])).code).toBe(1);
    expect(await json([...vlek(), "--min-tcb", "ucode=217,bootloader=5,snp=25"])).toEqual({
      code: 1,
      errors: [{ code: "ERR_TCB", message: "policy: reported TCB below the minimum: bootloader, snp" }],
    });
  });

  it("a whole TCB_VERSION in hex, as AMD's tools print it, for one product", async () => {
    expect((await verify([...vlek(), "--min-tcb", "Milan:d918000000000004"])).code).toBe(0);
    expect(await json([...vlek(), "--min-tcb", "Milan:da18000000000004"])).toEqual({
      code: 1,
      errors: [{ code: "ERR_TCB", message: "policy: reported TCB below the minimum: microcode" }],
    });
  });

  it("fmc is Turin's; a Turin report below it names fmc", async () => {
    expect(await json([...snpArgs("turin-oak-v5"), "--min-tcb", "fmc=1"])).toEqual({
      code: 1,
      errors: [{ code: "ERR_TCB", message: "policy: reported TCB below the minimum: fmc" }],
    });
    expect((await verify([...snpArgs("milan-oak-v3"), "--min-tcb", "fmc=1"])).code).toBe(0);
  });

  it("malformed specs are usage errors", async () => {
    for (const bad of [
      "ucode=256",
      "ucode=-1",
      "ucode=010",
      "foo=1",
      "ucode",
      "db18000000000004",
      "Rome:none",
      "milan:none",
      "Milan:fmc=1",
      "Milan:db1800000000004",
    ]) {
      const r = await verify([...vlek(), "--min-tcb", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^error ERR_USAGE: --min-tcb: /);
    }
  });
});

describe("cleanroom verify: --crl, --kds and strict certificates", () => {
  let chain: SimAmdChain;
  let dir: string;
  let args: string[];
  beforeAll(async () => {
    chain = await createSimAmdChain({ product: "Milan" });
    dir = mkdtempSync(join(tmpdir(), "verify-crl-"));
    const measurement = await sha384(new Uint8Array([7]));
    writeFileSync(
      join(dir, "report.bin"),
      await signSimReport(chain, { reportData: new Uint8Array(64), measurement }),
    );
    writeFileSync(join(dir, "vcek.der"), new Uint8Array(chain.vcek.rawData));
    writeFileSync(join(dir, "ask.der"), new Uint8Array(chain.ask.rawData));
    writeFileSync(join(dir, "roots.pem"), chain.ark.toString("pem"));
    writeFileSync(
      join(dir, "revokes-vcek.crl"),
      await signSimCrl(chain, { issuer: "ask", revoke: [chain.vcek] }),
    );
    const clean = await signSimCrl(chain, { issuer: "ark" });
    writeFileSync(
      join(dir, "clean.pem"),
      `-----BEGIN X509 CRL-----\n${Buffer.from(clean).toString("base64")}\n-----END X509 CRL-----\n`,
    );
    args = [
      join(dir, "report.bin"),
      "--vcek",
      join(dir, "vcek.der"),
      "--ask",
      join(dir, "ask.der"),
      "--trust-sim-root",
      join(dir, "roots.pem"),
      "--measurement",
      toHex(measurement),
    ];
  });
  afterEach(() => vi.unstubAllGlobals());

  it("a CRL file that revokes the VCEK refuses it; a clean one (PEM) passes", async () => {
    expect((await verify(args)).code).toBe(0);
    const revoked = await verify([...args, "--crl", join(dir, "revokes-vcek.crl"), "--json"]);
    expect(revoked.code).toBe(1);
    expect(JSON.parse(revoked.stdout).errors).toEqual([
      { code: "ERR_REVOKED", message: "certificate: VCEK revoked" },
    ]);
    const clean = await verify([...args, "--crl", join(dir, "clean.pem")]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/✓ certificates not revoked — checked: ASK/);
    expect((await verify([...args, "--crl", join(dir, "vcek.der")])).code).toBe(1); // not a CRL
    expect((await verify([...args, "--crl", join(dir, "missing.crl")])).code).toBe(2);
  });

  it("--kds fetches the chain's CRL too (through fetch), and applies it", async () => {
    const seen: string[] = [];
    const arkCrl = await signSimCrl(chain, { issuer: "ark", revoke: [chain.ask] });
    vi.stubGlobal("fetch", async (url: string) => {
      seen.push(url);
      const hit = url === crlUrl("Milan");
      return new Response(hit ? (arkCrl.slice().buffer as ArrayBuffer) : null, { status: hit ? 200 : 404 });
    });
    const r = await verify([...args, "--kds", "--json"]);
    expect(seen).toEqual(["https://kdsintf.amd.com/vcek/v1/Milan/crl"]);
    expect(JSON.parse(r.stdout).errors).toEqual([
      { code: "ERR_REVOKED", message: "certificate: ASK revoked" },
    ]);
  });

  it("a VCEK file with bytes after its DER is refused", async () => {
    const v = loadVector("milan-oak-v3");
    const padded = join(dir, "padded-vcek.der");
    writeFileSync(padded, concatBytes(v.leaf, new Uint8Array([0, 0])));
    const a = snpArgs("milan-oak-v3");
    a[a.indexOf("--vcek") + 1] = padded;
    const r = await verify([...a, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).errors).toEqual([
      { code: "ERR_CERTIFICATE", message: "certificate: not exactly one DER certificate" },
    ]);
  });
});
