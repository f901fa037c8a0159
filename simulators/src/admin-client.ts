import { request } from 'node:https';
import type { CreateTokenResponse } from '@tlsfleet/common';

/** The admin side of the provisioning API the simulator needs: mint tokens, revoke devices. */
export class AdminClient {
  constructor(
    private readonly url: string,
    private readonly adminToken: string,
    private readonly ca: string,
  ) {}

  async mintToken(deviceId: string, kind: 'device' | 'service', certTtlSeconds: number): Promise<string> {
    const body = (await this.post('/v1/tokens', { deviceId, kind, certTtlSeconds, ttlSeconds: 86_400 }, 201)) as CreateTokenResponse;
    return body.token;
  }

  async revoke(deviceId: string): Promise<void> {
    await this.post(`/v1/devices/${encodeURIComponent(deviceId)}/revoke`, {}, 200);
  }

  private post(path: string, payload: object, expected: number): Promise<unknown> {
    const data = Buffer.from(JSON.stringify(payload));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.url),
        { method: 'POST', ca: this.ca, headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json', 'content-length': data.length } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => (res.statusCode === expected ? resolve(JSON.parse(text)) : reject(new Error(`POST ${path}: ${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }
}
