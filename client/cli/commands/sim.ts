/** `cleanroom sim init DIR`: a simulated platform whose sim-roots.pem verifiers may trust. */
import { join } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import type { SimProduct } from "../../../attestation/sim/amd.js";
import { createSimPlatform, SIM_FILES, simExpected } from "../../../attestation/sim/platform.js";
import { saveSimPlatform } from "../../../attestation/sim/store-node.js";
import { addJsonOption, run } from "../options.js";
import { printJson } from "../output.js";

export function registerSimCommand(program: Command): void {
  const sim = program.command("sim").description("simulated enclave platform (development and CI)");
  const init = sim
    .command("init")
    .description("create a simulated AMD and Nitro platform in DIR (private keys stay in DIR, mode 0600)")
    .argument("<dir>")
    .option("--product <name>", "Milan | Genoa | Turin", "Genoa");
  addJsonOption(init).action((dir: string, f: { product: string; json?: boolean }) =>
    run(async () => {
      if (!["Milan", "Genoa", "Turin"].includes(f.product))
        throw new UsageError("--product must be Milan, Genoa or Turin");
      const platform = await createSimPlatform({ product: f.product as SimProduct });
      await saveSimPlatform(platform, dir);
      const expected = simExpected(platform);
      const roots = join(dir, SIM_FILES.roots);
      if (f.json) {
        printJson({ dir, roots, expected: join(dir, SIM_FILES.expected), ...expected });
        return 0;
      }
      process.stdout.write(
        `simulated platform written to ${dir}\n` +
          `  trust it with: --trust-sim-root ${roots} --manifest ${join(dir, SIM_FILES.expected)}\n` +
          `  SEV-SNP measurement: ${expected.measurement}\n` +
          `  Nitro PCR0: ${expected.pcrs[0]}\n`,
      );
      return 0;
    }, f.json),
  );
}
