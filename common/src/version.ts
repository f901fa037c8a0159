// Written by scripts/sync-version.mjs from the root package.json's `version` (the one
// version source): a constant, so importing reads no file, and the agent bundle and an
// installed CLI tarball carry it without the root package.json.
// common/src/version.test.ts asserts it agrees with every package.json.

/** tlsfleet's release version (semver), the same for every package. */
export const VERSION = '0.1.0';
