import type { ErrorRequestHandler, Response } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import type { ApiContext } from './context.js';

export function sendError(res: Response, err: TlsfleetError): void {
  if (err.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(err.retryAfterSeconds));
  // RFC 7235 §3.1: every 401 names a scheme (EST clients such as libest retry on it).
  if (err.status === 401 && !res.hasHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', 'Bearer realm="tlsfleet"');
  res.status(err.status).json(err.toBody());
}

/**
 * The only place a code becomes an HTTP status. Body-parser failures become stable codes;
 * anything untyped is logged and answered `internal_error` without details.
 */
export function errorHandler(ctx: ApiContext): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const e = toTlsfleetError(err);
    if (e.code === 'internal_error') ctx.logger.error({ err, method: req.method, path: req.path }, 'unhandled error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, e);
  };
}

export function toTlsfleetError(err: unknown): TlsfleetError {
  if (err instanceof TlsfleetError) return err;
  const type = (err as { type?: string }).type;
  if (type === 'entity.too.large') return new TlsfleetError('payload_too_large', 'The request body is over the size limit.');
  if (type === 'entity.parse.failed') return new TlsfleetError('invalid_request', 'The body is not valid JSON.');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new TlsfleetError('invalid_request', 'Unsupported body encoding.');
  if (type === 'request.aborted') return new TlsfleetError('invalid_request', 'The request was aborted.');
  // Other client errors from the HTTP stack (a body that does not decode as its
  // Content-Encoding, a path with broken percent-encoding) carry a 4xx `status`.
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  if (status === 413) return new TlsfleetError('payload_too_large');
  if (typeof status === 'number' && status >= 400 && status < 500) return new TlsfleetError('invalid_request', 'The request is malformed.');
  return new TlsfleetError('internal_error');
}
