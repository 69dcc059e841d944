/** The snp-measure vector table (../shared/vectors/snp-measure), shared by the library and CLI tests. */
import { readFileSync } from "node:fs";

export const DIR = new URL("../../../shared/vectors/snp-measure/", import.meta.url);

export interface Case {
  name: string;
  mode: string;
  ovmf: string;
  kernel?: string | null;
  initrd?: string | null;
  append?: string | null;
  vcpus?: number;
  vmm_type?: "QEMU" | "ec2" | "gce";
  guest_features?: string;
  vcpu_sig?: string | null;
  vcpu_type?: string;
  vcpu_family?: number;
  vcpu_model?: number;
  vcpu_stepping?: number;
  snp_ovmf_hash?: string;
  expected: string | null;
  expected_error: string | null;
}

const files = new Map<string, Uint8Array>();
export function file(rel: string): Uint8Array {
  let b = files.get(rel);
  if (b === undefined) {
    b = new Uint8Array(readFileSync(new URL(rel, DIR)));
    files.set(rel, b);
  }
  return b;
}

export function loadCases(name: string): Case[] {
  return (JSON.parse(readFileSync(new URL(name, DIR), "utf8")) as { cases: Case[] }).cases;
}
