/** Canonical certificate serial: lower-case hex of the integer, no leading zeros. */
export function normalizeSerialHex(hex: string): string {
  const s = hex.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}
