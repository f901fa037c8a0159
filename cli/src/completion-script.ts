import type { CommandDefinition } from '@tlsfleet/common';
import { COMMAND_LIST, isGroup, leafCommands } from './definitions/command-definitions.js';

const sq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const groups = () => COMMAND_LIST.filter(isGroup);
const words = (c: CommandDefinition) => [...Object.keys(c.flags).map((f) => `--${f}`), '--help'];

/** Value completions per `command|--flag`: files, directories, fixed words, or nothing (a free value). */
function valueCases(kind: 'bash' | 'zsh'): string[] {
  const byAction = new Map<string, string[]>();
  for (const c of leafCommands()) {
    for (const [name, f] of Object.entries(c.flags)) {
      if (f.type === 'boolean') continue;
      const action =
        f.complete === 'file' ? (kind === 'bash' ? 'COMPREPLY=($(compgen -f -- "$cur"))' : '_files')
        : f.complete === 'dir' ? (kind === 'bash' ? 'COMPREPLY=($(compgen -d -- "$cur"))' : '_files -/')
        : f.complete !== undefined ? (kind === 'bash' ? `COMPREPLY=($(compgen -W ${sq(f.complete.join(' '))} -- "$cur"))` : `compadd -- ${f.complete.join(' ')}`)
        : kind === 'bash' ? 'COMPREPLY=()' : ':';
      byAction.set(action, [...(byAction.get(action) ?? []), `${c.name}|--${name}`]);
    }
  }
  return [...byAction].map(([action, keys]) => `    ${keys.map((k) => JSON.stringify(k)).join('|')}) ${action}; return ;;`);
}

/** `tlsfleet completion bash`: `source <(tlsfleet completion bash)`. */
export function bashCompletion(): string {
  const top = [...COMMAND_LIST.map((c) => c.name), '--help', '--version'].join(' ');
  const flagCases = leafCommands().map((c) => `    ${JSON.stringify(c.name)}) flags=${sq(words(c).join(' '))} ;;`);
  const subCases = groups().map((g) => `      ${g.name}) COMPREPLY=($(compgen -W ${sq(g.subcommands.map((s) => s.name.split(' ')[1]).join(' '))} -- "$cur")); return ;;`);
  return `# bash completion for tlsfleet, generated from its command definitions.
# Load it with: source <(tlsfleet completion bash)
_tlsfleet() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} key=\${COMP_WORDS[1]} flags=''
  if [[ $COMP_CWORD -eq 1 ]]; then COMPREPLY=($(compgen -W ${sq(top)} -- "$cur")); return; fi
  case $key in
    ${groups().map((g) => g.name).join('|')})
      if [[ $COMP_CWORD -eq 2 ]]; then
        case $key in
${subCases.join('\n')}
        esac
      fi
      key="$key \${COMP_WORDS[2]}" ;;
  esac
  case "$key|$prev" in
${valueCases('bash').join('\n')}
  esac
  case $key in
${flagCases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _tlsfleet tlsfleet
`;
}

/** `tlsfleet completion zsh`: sourced after compinit, or saved as `_tlsfleet` in `$fpath`. */
export function zshCompletion(): string {
  const describe = (pairs: [string, string][]) => pairs.map(([w, h]) => sq(`${w.replaceAll(':', '\\:')}:${h}`)).join(' ');
  const top = describe(COMMAND_LIST.map((c) => [c.name, c.summary]));
  const subCases = groups().map((g) => `      ${g.name}) subs=(${describe(g.subcommands.map((s) => [s.name.split(' ')[1] as string, s.summary]))}) ;;`);
  const flagCases = leafCommands().map((c) => `    ${JSON.stringify(c.name)}) flags=(${describe([...Object.entries(c.flags).map(([n, f]) => [`--${n}`, f.help] as [string, string]), ['--help', 'print the flags and exit']])}) ;;`);
  return `#compdef tlsfleet
# zsh completion for tlsfleet, generated from its command definitions.
# Load it with: source <(tlsfleet completion zsh)   (after compinit)
_tlsfleet() {
  local key=\${words[2]} prev=\${words[CURRENT-1]}
  local -a commands subs flags
  if (( CURRENT == 2 )); then
    commands=(${top})
    _describe 'command' commands
    return
  fi
  case $key in
    ${groups().map((g) => g.name).join('|')})
      if (( CURRENT == 3 )); then
        case $key in
${subCases.join('\n')}
        esac
        _describe 'subcommand' subs
        return
      fi
      key="$key \${words[3]}" ;;
  esac
  case "$key|$prev" in
${valueCases('zsh').join('\n')}
  esac
  case $key in
${flagCases.join('\n')}
  esac
  _describe 'flag' flags
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _tlsfleet "$@"
elif (( $+functions[compdef] )); then
  compdef _tlsfleet tlsfleet
fi
`;
}
