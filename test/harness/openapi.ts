import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** The HTTP API contract of the provisioning service. */
export const OPENAPI_FILE = fileURLToPath(new URL('../../docs/reference/openapi.yaml', import.meta.url));

export type Schema = Record<string, unknown> | boolean;

export interface OpenApiResponse {
  description?: string;
  headers?: Record<string, { required?: boolean; schema?: Schema }>;
  content?: Record<string, { schema?: Schema }>;
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, OpenApiResponse> }>>;
  components: { schemas: Record<string, Schema> };
}

/** The document as written ($refs unresolved). */
export function loadOpenApi(): OpenApiDocument {
  return parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenApiDocument;
}

/**
 * Error code → HTTP status, as the document states it: each `Error<status>` schema narrows
 * the code to the codes carried by that status.
 */
export function errorStatuses(doc: OpenApiDocument = loadOpenApi()): Record<string, number> {
  const statuses: Record<string, number> = {};
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    const m = /^Error(\d{3})$/.exec(name);
    if (!m) continue;
    const narrowing = (schema as { allOf?: Array<{ properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }> }).allOf?.[1];
    for (const code of narrowing?.properties?.error?.properties?.code?.enum ?? []) {
      if (statuses[code] !== undefined) throw new Error(`${code} is listed under two statuses in ${OPENAPI_FILE}`);
      statuses[code] = Number(m[1]);
    }
  }
  return statuses;
}

/** Every schema of a document with where it sits: the components' and each `schema` of a parameter, header, body or answer. */
export function allSchemas(doc: OpenApiDocument): Array<[string, Schema]> {
  const found: Array<[string, Schema]> = Object.entries(doc.components.schemas).map(([name, s]) => [`#/components/schemas/${name}`, s]);
  const walk = (node: unknown, at: string): void => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'schema' && value !== null && (typeof value === 'object' || typeof value === 'boolean')) found.push([`${at}/schema`, value as Schema]);
      else walk(value, `${at}/${key}`);
    }
  };
  walk(doc.paths, '#/paths');
  walk({ ...doc.components, schemas: undefined }, '#/components');
  return found;
}

/** What the contract needs of an answer (https-client's HttpAnswer fits, and so does a raw one). */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// CommonJS default export seen through NodeNext typings.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

/**
 * Checks live answers against a resolved ($refs inlined) OpenAPI document and remembers what
 * it saw: every `METHOD /template` exercised and every error code answered.
 */
export class ContractChecker {
  readonly exercised = new Set<string>();
  readonly codesSeen = new Set<string>();
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<object, ValidateFunction>();
  private readonly templates: Array<{ template: string; pattern: RegExp; literal: number }>;

  constructor(readonly resolved: OpenApiDocument) {
    this.ajv = addFormats(new Ajv2020({ strict: true, strictTypes: false, allErrors: true }));
    this.templates = Object.keys(resolved.paths).map((template) => ({
      template,
      pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+')}$`),
      literal: template.replace(/\{[^}]+\}/g, '').length,
    }));
  }

  /** Every operation of the document, as `METHOD /template`. */
  operations(): string[] {
    return Object.entries(this.resolved.paths).flatMap(([template, item]) =>
      Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${template}`),
    );
  }

  /** The path template a request path (query string allowed) falls under; the most literal wins. */
  templateOf(path: string): string | undefined {
    const bare = path.split('?')[0] ?? '';
    const candidates = this.templates.filter((t) => t.pattern.test(bare)).sort((a, b) => b.literal - a.literal);
    return candidates[0]?.template;
  }

  /** Compiles (once) and returns the validator of one schema object of the resolved document. */
  validator(schema: Schema): ValidateFunction {
    const key = typeof schema === 'object' ? schema : { v: schema };
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(schema);
      this.compiled.set(key, fn);
    }
    return fn;
  }

  /**
   * The ways `answer` departs from the document for `method path`; empty when it conforms.
   * A path no route matches must answer the document's `404 not_found`.
   */
  problems(method: string, path: string, answer: Answer): string[] {
    const template = this.templateOf(path);
    const operation = template === undefined ? undefined : this.resolved.paths[template]?.[method.toLowerCase()];
    const where = `${method.toUpperCase()} ${path} → ${answer.status}`;
    if (!template || !operation) {
      // No such route: the app's fallback answers 404 not_found for any method and path.
      return this.checkResponse(where, { content: { 'application/json': { schema: this.resolved.components.schemas.Error404 as Schema } } }, answer);
    }
    this.exercised.add(`${method.toUpperCase()} ${template}`);
    const response = operation.responses[String(answer.status)];
    if (!response) return [`${where}: status ${answer.status} is not documented for ${method.toUpperCase()} ${template} (documented: ${Object.keys(operation.responses).join(', ')})`];
    return this.checkResponse(where, response, answer);
  }

  private checkResponse(where: string, response: OpenApiResponse, answer: Answer): string[] {
    const found: string[] = [];
    const header = (name: string): string | undefined => {
      const v = answer.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    for (const [name, spec] of Object.entries(response.headers ?? {})) {
      const value = header(name);
      if (value === undefined) {
        if (spec.required) found.push(`${where}: header ${name} is missing`);
        continue;
      }
      if (spec.schema !== undefined) {
        const typed = (spec.schema as { type?: string }).type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
        const check = this.validator(spec.schema);
        if (!check(typed)) found.push(`${where}: header ${name}: ${JSON.stringify(value)} ${this.ajv.errorsText(check.errors)}`);
      }
    }
    const body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body, 'utf8');
    const content = response.content;
    if (!content) {
      if (body.length > 0) found.push(`${where}: the document gives no body, the answer has ${body.length} bytes`);
      return found;
    }
    const actualType = header('content-type');
    const mediaKey = actualType === undefined ? undefined : Object.keys(content).find((k) => mediaTypeMatches(k, actualType));
    if (mediaKey === undefined) {
      found.push(`${where}: Content-Type ${String(actualType)} is not one of ${Object.keys(content).join(', ')}`);
      return found;
    }
    const schema = content[mediaKey]?.schema;
    if (schema === undefined) return found; // binary (a DER CRL): the caller checks it
    let value: unknown = body.toString('utf8');
    if (essence(mediaKey) === 'application/json') {
      try {
        value = JSON.parse(value as string);
      } catch {
        return [...found, `${where}: the body is not JSON: ${(value as string).slice(0, 200)}`];
      }
      const code = (value as { error?: { code?: unknown } } | null)?.error?.code;
      if (typeof code === 'string') this.codesSeen.add(code);
    }
    const check = this.validator(schema);
    if (!check(value)) found.push(`${where}: body ${this.ajv.errorsText(check.errors)}: ${JSON.stringify(value).slice(0, 300)}`);
    return found;
  }
}

function essence(mediaType: string): string {
  return (mediaType.split(';')[0] ?? '').trim().toLowerCase();
}

function params(mediaType: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of mediaType.split(';').slice(1)) {
    const i = part.indexOf('=');
    if (i > 0) map.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim().replace(/^"|"$/g, ''));
  }
  return map;
}

/** Same type and subtype, and every parameter the document names present with its value (charset may be added). */
export function mediaTypeMatches(documented: string, actual: string): boolean {
  if (essence(documented) !== essence(actual)) return false;
  const have = params(actual);
  return [...params(documented)].every(([k, v]) => have.get(k)?.toLowerCase() === v.toLowerCase());
}
