import { describe, expect, it } from 'vitest';
import { crlUrlOf } from './public-url.js';

describe('crlUrlOf (--public-url)', () => {
  it.each([
    ['https://ca.example.net', 'https://ca.example.net/v1/crl'],
    ['https://ca.example.net:8443/', 'https://ca.example.net:8443/v1/crl'],
    ['https://lb.example.net/tlsfleet/', 'https://lb.example.net/tlsfleet/v1/crl'],
    ['https://ca.exämple.net', 'https://ca.xn--exmple-cua.net/v1/crl'],
    ['https://127.0.0.1:8443', 'https://127.0.0.1:8443/v1/crl'],
  ])('turns %s into %s', (url, crl) => {
    expect(crlUrlOf(url)).toBe(crl);
  });

  it.each([
    ['not a URL', /not a URL/],
    ['http://ca.example.net', /https/],
    ['ftp://ca.example.net', /https/],
    ['https://user:secret@ca.example.net', /user name or password/],
    ['https://ca.example.net/?x=1', /query or fragment/],
    ['https://ca.example.net/#top', /query or fragment/],
  ])('refuses %s', (url, message) => {
    expect(() => crlUrlOf(url)).toThrow(message);
  });
});
