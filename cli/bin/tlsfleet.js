#!/usr/bin/env node
import { main } from '../dist/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// A failed command exits now: a half-open connection a library failed to end (node-postgres
// after a refused SCRAM exchange) must not keep the process alive with its error printed.
if (code !== 0) process.exit(code);
