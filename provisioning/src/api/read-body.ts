import type { RequestHandler } from 'express';
import { TlsfleetError } from '@tlsfleet/common';

/**
 * Runs a body parser (bounded by its own size limit) under a deadline counted from the end
 * of the headers. A body that has not fully arrived by then is answered 408
 * `request_timeout` and its connection closed: a slow upload holds no issuance capacity
 * (it is read before admission) and holds its connection for `timeoutMs` at most.
 * `onTimeout` is told of each one (metrics, log).
 */
export function bodyWithin(parser: RequestHandler, timeoutMs: number, onTimeout: () => void): RequestHandler {
  return (req, res, next) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      onTimeout();
      // RFC 9110 §15.5.9: a 408 says the server closes the connection rather than wait.
      res.setHeader('Connection', 'close');
      next(new TlsfleetError('request_timeout', `The request body did not arrive within ${timeoutMs} ms.`));
    }, timeoutMs);
    parser(req, res, (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      next(err);
    });
  };
}
