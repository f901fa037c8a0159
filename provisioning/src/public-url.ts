/**
 * `provisioning --public-url URL`: where relying parties reach this service (behind a load
 * balancer, the balancer's URL). Returns the URL of its CRL, `<public-url>/v1/crl`, that issued
 * certificates name as their CRL Distribution Point (RFC 5280 §4.2.1.13). Throws an Error
 * naming the problem for anything but a plain https URL: no credentials, query or fragment.
 */
export function crlUrlOf(publicUrl: string): string {
  if (!URL.canParse(publicUrl)) throw new Error(`--public-url is not a URL: ${JSON.stringify(publicUrl.slice(0, 100))}`);
  const url = new URL(publicUrl);
  if (url.protocol !== 'https:') throw new Error('--public-url must be an https:// URL (the service speaks only HTTPS)');
  if (url.username !== '' || url.password !== '') throw new Error('--public-url must not carry a user name or password: it is written into every certificate');
  if (url.search !== '' || url.hash !== '') throw new Error('--public-url must not have a query or fragment');
  // URL gives the host in ASCII (punycode) and percent-encodes the path: an IA5String as X.509 wants.
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}/v1/crl`;
}
