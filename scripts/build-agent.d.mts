/** Where `npm run build:agent` writes the bundle: device-sdk/bundle/tlsfleet-agent.mjs. */
export declare const DEFAULT_AGENT_BUNDLE: string;

export interface AgentBundle {
  outFile: string;
  /** Size of the bundle file, bytes. */
  bytes: number;
  /** Source modules inlined into it. */
  inputs: number;
}

/** Builds the single-file agent into `outFile` (default DEFAULT_AGENT_BUNDLE). */
export declare function buildAgent(outFile?: string): Promise<AgentBundle>;
