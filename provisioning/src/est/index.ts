export * from './pkcs7.js';
export * from './request-body.js';
export * from './token-auth.js';
