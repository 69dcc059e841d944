/** Runs one CLI command in-process with commander and captures what it prints. */
import { Command } from "commander";
import { vi } from "vitest";

export async function runCli(
  register: (program: Command) => void,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  register(program);
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    stderr += String(s);
    return true;
  });
  process.exitCode = 0;
  try {
    await program.parseAsync(["node", "cleanroom", ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}
