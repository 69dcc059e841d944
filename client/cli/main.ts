#!/usr/bin/env node
/** Entry point of the `cleanroom` CLI (package.json bin); the program itself is in program.ts. */
import { main } from "./program.js";

process.exitCode = await main(process.argv.slice(2));
