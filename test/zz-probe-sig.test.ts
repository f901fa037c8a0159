import { it, expect } from 'vitest';
import { join } from 'node:path';
import { runCli, startProvisioningProcess } from '/work/main/test/harness/cli.js';
import { tempDir } from '/work/main/test/harness/temp-dir.js';
it('x', async () => {
  const tmp = tempDir('sig-');
  const dataDir = join(tmp.path, 'data');
  await runCli(['init', '--data-dir', dataDir]);
  for (let i = 0; i < 5; i++) {
    const s = await startProvisioningProcess(dataDir);
    const code = await s.stop();
    console.log(i, code, s.child.signalCode, JSON.stringify(s.output().slice(-600)));
  }
  tmp.cleanup();
}, 60000);
