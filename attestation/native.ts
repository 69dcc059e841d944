/**
 * node:crypto when the runtime has it, looked up at run time (never imported) so that the SEV-SNP
 * verifiers and byte helpers still bundle for the browser. Undefined in a browser or in a Node without
 * `process.getBuiltinModule` (before 20.16); callers then use WebCrypto.
 */
import type * as NodeCrypto from "node:crypto";

type WithBuiltins = { process?: { getBuiltinModule?: (id: string) => unknown } };

export const nodeCrypto = (globalThis as WithBuiltins).process?.getBuiltinModule?.("node:crypto") as
  | typeof NodeCrypto
  | undefined;
