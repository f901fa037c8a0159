/** Universal DER tags (X.690 §8) used by the hand-written CSR reader and certificate writer. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0_CONSTRUCTED: 0xa0,
  CONTEXT_3_CONSTRUCTED: 0xa3,
} as const;
