/**
 * Devices whose current certificate is unrevoked and expires in (`$1`, `$2`] (ms): a range
 * walk of the certificates_not_after index, each row checked against its device by primary
 * key. Superseded certificates (renewed, re-enrolled) are not counted: they are meant to lapse.
 */
export const COUNT_EXPIRING = `SELECT COUNT(*) AS n FROM certificates c
  WHERE c.not_after > $1 AND c.not_after <= $2 AND c.revoked_at IS NULL
    AND EXISTS (SELECT 1 FROM devices d WHERE d.id = c.subject AND d.current_serial = c.serial)`;
