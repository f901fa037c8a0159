import { checks, type ValueCheck } from '@tlsfleet/common';

// Kept here rather than imported from provisioning and broker so `--help` and completion load
// no service code; cli/src/definitions/definitions.test.ts checks they match the services' lists.
export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const FORWARDED_CERT_FORMAT_NAMES = ['nginx', 'envoy'] as const;

export const DATA_DIR = { type: 'string', value: 'DIR', help: 'data dir made by `tlsfleet init`', required: true, complete: 'dir' } as const;

export const HOST = { type: 'string', value: 'HOST', help: 'address to listen on (0.0.0.0 serves a network)', default: '127.0.0.1' } as const;

/** `--config FILE`: the server commands' YAML or JSON configuration (docs/reference/configuration.md). */
export const CONFIG_FLAG = {
  config: { type: 'string', value: 'FILE', help: 'YAML or JSON file whose keys are these long flag names (env TLSFLEET_CONFIG)', complete: 'file' },
} as const;

/** `--store` and the password kept off the command line, for every command that opens the store. */
export const STORE_FLAGS = {
  store: {
    type: 'string',
    value: 'URL',
    help: 'sqlite (the data dir\'s file) or postgres://USER@HOST:PORT/DB',
    default: 'sqlite',
    secret: true,
    check: ((v: string) => (v === 'sqlite' || (/^postgres(ql)?:\/\//.test(v) && URL.canParse(v)) ? undefined : 'takes "sqlite" or a postgres://user@host:port/database URL (special characters percent-encoded)')) as ValueCheck,
  },
  'store-password-file': { type: 'string', value: 'FILE', help: 'file holding the PostgreSQL password (trailing newline dropped)', complete: 'file' },
} as const;

/** The log flags of the server commands (cli/src/service-logs.ts). */
export const LOG_FLAG_DEFINITIONS = {
  'log-level': { type: 'string', value: 'LEVEL', help: 'least severe level logged', default: 'info', check: checks.oneOf(LOG_LEVEL_NAMES), complete: LOG_LEVEL_NAMES },
  'log-format': { type: 'string', value: 'FORMAT', help: 'json lines, or pretty text for people', default: 'pretty on a terminal, else json', check: checks.oneOf(['json', 'pretty']), complete: ['json', 'pretty'] },
} as const;
