// The provisioning package's programmatic API, for the CLI, tests and benchmarks alike.
// The issuance internals (CSR reading, key policy, certificate building) stay private:
// Authority.enroll is the way in.

// The HTTPS service, as `tlsfleet provisioning` runs it.
export { startProvisioning, type ProvisioningOptions, type RunningProvisioning } from './provisioning-server.js';
export type { RelayedRenewal, RenewAnswer } from './api/in-process-relay.js';
// A new data dir (CAs, server certificates, admin token), as `tlsfleet init` makes it.
export { initDataDir, type InitOptions } from './init.js';
// The data dir's files and config (shared with the broker through common).
export { DataDir, DataDirError, DATA_FILES, type DataDirConfig } from './data-dir.js';
// The certificate authority: tokens, enrollment, renewal, revocation, CRLs; the CLI's offline commands use it.
export { Authority, type Issued, type MintTokenRequest } from './authority/authority.js';
// The stores behind an Authority: embedded SQLite, or PostgreSQL for several instances.
export { SqliteStore } from './storage/sqlite-store.js';
export { PostgresStore, redactConnectionString, type PostgresStoreOptions } from './storage/postgres-store.js';
export { POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE } from './storage/postgres-migrations.js';
export { openStore, isPostgresUrl, describeStore } from './storage/open-store.js';
export type { Store } from './storage/store.js';
// Where the CRL is served, retention, and the audit entry format, as the CLI prints them.
export { crlUrlOf } from './public-url.js';
export { DEFAULT_RETENTION_MS } from './retention-pruner.js';
export { auditEntry } from './api/audit-route.js';
export { fleetAudit, type FleetAuditReport, type Finding, type AuditedDevice } from './audit/fleet-report.js';
export { fleetAuditWindowMs, FLEET_AUDIT_DEFAULTS } from './api/fleet-audit-route.js';
export { publishedCrlNumber } from './crl-publisher.js';
// The service's logger (pino, with secrets redacted).
export { createLogger, LOG_LEVELS, LOG_REDACT_PATHS, type DestinationStream, type Logger, type LogLevel } from './logger.js';
// An Authority over a data dir's intermediate CA and CRL files.
export { authorityFromDataDir, crlFilesOf, type CrlFiles } from './data-dir-authority.js';
export { CrlPublisher, type CrlPublisherOptions } from './crl-publisher.js';
// CA rotation, as `tlsfleet ca ...` runs it.
export { CaRotationError, type CaRotationCode } from './ca/ca-rotation-error.js';
export { signIntermediate, type SignIntermediateParams } from './ca/sign-intermediate.js';
export { requestIntermediate, installIntermediate, retireIntermediate, type Installed, type Retired } from './ca/intermediate-rotation.js';
export { newRoot, trustRoot, untrustRoot, devicesLackingRoot, type NewRootParams, type Untrusted, type RootNotOnDevices } from './ca/root-rotation.js';
// The enrollment approval hook and webhook receivers' URL rules (`--enroll-hook`, `--hook-ca`).
export { hookTarget } from './hooks/post-json.js';
export { ENROLL_HOOK_TIMEOUT_MS, type EnrollHookOptions, type EnrollmentRequest } from './hooks/enroll-hook.js';
