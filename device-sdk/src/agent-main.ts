import { runAgent } from './agent.js';

// Entry of the single-file agent bundle: `node tlsfleet-agent.mjs enroll|run ...`.
// Exit explicitly: a device process has nothing to flush once runAgent returns.
process.exit(await runAgent(process.argv.slice(2)));
