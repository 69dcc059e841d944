/**
 * A throwaway SEV-SNP-shaped chain made with the openssl CLI (RSA-PSS SHA-384 salt 48 roots, an
 * EC P-384 "VCEK" with AMD extensions), to test roots that are not pinned.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toHex } from "../../attestation/bytes.js";
import type { TcbVersion } from "../../attestation/snp/tcb.js";

export interface SimChain {
  ark: Uint8Array;
  ask: Uint8Array;
  vcek: Uint8Array;
  /** PKCS#8 DER of the VCEK private key. */
  vcekKey: Uint8Array;
}

const PSS = ["-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:48"];

/**
 * Subjects (openssl -subj) for the ARK and ASK, e.g. to mimic AMD's names; by default
 * `/O=<org>/CN=ARK-Sim` and `/O=<org>/CN=SEV-Sim`.
 */
export interface SimNames {
  ark: string;
  ask: string;
}

export function makeSimChain(org: string, hwId: Uint8Array, tcb: TcbVersion, names?: SimNames): SimChain {
  const d = mkdtempSync(join(tmpdir(), "snp-sim-"));
  const p = (f: string): string => join(d, f);
  const ossl = (...args: string[]): void => {
    execFileSync("openssl", args, { stdio: "pipe" });
  };
  try {
    writeFileSync(
      p("ext.cnf"),
      [
        "[ca]",
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign",
        "[leaf]",
        "1.3.6.1.4.1.3704.1.1=ASN1:INTEGER:0",
        "1.3.6.1.4.1.3704.1.2=ASN1:IA5STRING:Milan-B0",
        `1.3.6.1.4.1.3704.1.3.1=ASN1:INTEGER:${tcb.bl}`,
        `1.3.6.1.4.1.3704.1.3.2=ASN1:INTEGER:${tcb.tee}`,
        `1.3.6.1.4.1.3704.1.3.3=ASN1:INTEGER:${tcb.snp}`,
        `1.3.6.1.4.1.3704.1.3.8=ASN1:INTEGER:${tcb.ucode}`,
        `1.3.6.1.4.1.3704.1.4=DER:${toHex(hwId)}`,
        "",
      ].join("\n"),
    );
    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("ark.key"));
    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("ask.key"));
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", p("vcek.key"));
    ossl(
      "req",
      "-x509",
      "-new",
      "-key",
      p("ark.key"),
      "-subj",
      names?.ark ?? `/O=${org}/CN=ARK-Sim`,
      "-days",
      "3650",
      ...PSS,
      "-config",
      p("ext.cnf"),
      "-extensions",
      "ca",
      "-outform",
      "DER",
      "-out",
      p("ark.der"),
    );
    ossl("x509", "-in", p("ark.der"), "-inform", "DER", "-out", p("ark.pem"));
    for (const [name, key, issuer, ext, subj] of [
      ["ask", "ask.key", "ark", "ca", names?.ask ?? `/O=${org}/CN=SEV-Sim`],
      ["vcek", "vcek.key", "ask", "leaf", `/O=${org}/CN=SEV-VCEK`],
    ] as const) {
      ossl("req", "-new", "-key", p(key), "-subj", subj, "-out", p(`${name}.csr`));
      ossl(
        "x509",
        "-req",
        "-in",
        p(`${name}.csr`),
        "-CA",
        p(`${issuer}.pem`),
        "-CAkey",
        p(`${issuer}.key`),
        "-set_serial",
        "1",
        "-days",
        "3650",
        ...PSS,
        "-extfile",
        p("ext.cnf"),
        "-extensions",
        ext,
        "-outform",
        "DER",
        "-out",
        p(`${name}.der`),
      );
      ossl("x509", "-in", p(`${name}.der`), "-inform", "DER", "-out", p(`${name}.pem`));
    }
    ossl("pkcs8", "-topk8", "-nocrypt", "-in", p("vcek.key"), "-outform", "DER", "-out", p("vcek.p8"));
    const read = (f: string): Uint8Array => new Uint8Array(readFileSync(p(f)));
    return { ark: read("ark.der"), ask: read("ask.der"), vcek: read("vcek.der"), vcekKey: read("vcek.p8") };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
