/**
 * MQTT 3.1.1 §3.4–3.7: the acknowledgements of the PUBLISH flow, each with the one
 * fixed-header byte it must have (type in the high nibble; PUBREL's flags are 0b0010).
 * The publish reader and writer both read and write them from this table.
 */
const ACKNOWLEDGEMENT_HEADERS = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

export type AcknowledgementCmd = keyof typeof ACKNOWLEDGEMENT_HEADERS;

const HEADER_BY_CMD = new Map<string, number>(Object.entries(ACKNOWLEDGEMENT_HEADERS));
const CMD_BY_HEADER = new Map<number, AcknowledgementCmd>(Object.entries(ACKNOWLEDGEMENT_HEADERS).map(([cmd, header]) => [header, cmd as AcknowledgementCmd]));

/** The fixed-header byte of the acknowledgement `cmd`; undefined for any other packet. */
export function acknowledgementHeader(cmd: string): number | undefined {
  return HEADER_BY_CMD.get(cmd);
}

/** The acknowledgement whose fixed-header byte is exactly `header`; undefined for any other byte. */
export function acknowledgementOf(header: number): AcknowledgementCmd | undefined {
  return CMD_BY_HEADER.get(header);
}
