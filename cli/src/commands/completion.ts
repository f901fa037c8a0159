import { bashCompletion, zshCompletion } from '../completion-script.js';
import { UsageError } from '../usage-error.js';

/** `tlsfleet completion bash|zsh`: the completion script on stdout. */
export async function completionCommand(argv: string[]): Promise<number> {
  const [shell, ...rest] = argv;
  if (rest.length > 0 || (shell !== 'bash' && shell !== 'zsh')) throw new UsageError('give a shell: bash or zsh');
  process.stdout.write(shell === 'bash' ? bashCompletion() : zshCompletion());
  return 0;
}
