/** AMD EPYC generations whose SEV-SNP evidence this verifier knows. */
export type SnpProduct = "Milan" | "Genoa" | "Turin";

export const SNP_PRODUCTS: readonly SnpProduct[] = ["Milan", "Genoa", "Turin"];

/**
 * Product from the CPUID family/model a v3+ report carries (virtee/sev `Generation::identify_cpu`).
 * Undefined for an unknown pair: the caller then relies on the certificate chain.
 */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return "Milan";
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return "Genoa";
  }
  if (family === 0x1a && model <= 0x11) return "Turin";
  return undefined;
}
