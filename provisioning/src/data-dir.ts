// The data dir is shared with the broker, so it lives in common.
export { DataDir, DataDirError, DATA_FILES, type DataDirConfig, type DataFile } from '@tlsfleet/common';
