#!/usr/bin/env node
/** Entry point of the `cleanroom` CLI (package.json bin); the program itself is in program.ts. */
import { main } from "./program.js";

// A reader that stops early (`| head`) closes the pipe: that ends the output, not in a crash.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
