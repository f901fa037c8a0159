export * from './identity.js';
export * from './error-codes.js';
export * from './pem.js';
export * from './wire.js';
export * from './rotation.js';
export * from './serial.js';
export * from './peer-identity.js';
export * from './duration.js';
