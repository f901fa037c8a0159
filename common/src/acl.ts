/**
 * Topic ACL the broker applies to every will, PUBLISH and SUBSCRIBE
 * (docs/reference/mqtt.md). Deny by default: only a rule for the identity's kind can allow, and `admin`
 * identities get nothing.
 */
import { type Identity, isValidName } from './identity.js';
import { filterProblem, isSharedFilter, levelsCover, levelsMatch, publishTopicProblem, sharedSubscription } from './topics.js';

export type AclAction = 'publish' | 'subscribe';
/** `*` means device and service identities; no rule ever applies to `admin`. */
export type AclRuleIdentity = 'device' | 'service' | '*';

export interface AclRule {
  /** Shown in logs beside the rule's index. */
  readonly name?: string;
  readonly identity: AclRuleIdentity;
  readonly allow: readonly AclAction[];
  /** Topic filters; a whole level `{id}` is bound to the device id or service name. */
  readonly topics: readonly string[];
}

export interface AclPolicy {
  readonly version: 1;
  readonly rules: readonly AclRule[];
}

export class AclPolicyError extends Error {
  readonly code = 'acl_policy';
  /** Where in the policy, e.g. `rules[2].topics[0]`; '' for the policy as a whole. */
  readonly path: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`${path === '' ? 'policy' : path}: ${reason}`, options);
    this.name = 'AclPolicyError';
    this.path = path;
  }
}

/** What every check answers for one connection; `{id}` is already bound. */
export interface IdentityAcl {
  canPublish(topic: string): boolean;
  canSubscribe(filter: string): boolean;
  /** Why canPublish answers as it does, for logs. */
  explainPublish(topic: string): string;
  /** Why canSubscribe answers as it does, for logs. */
  explainSubscribe(filter: string): string;
}

const ID_LEVEL = '{id}';
const POLICY_KEYS: readonly string[] = ['version', 'rules'];
const RULE_KEYS: readonly string[] = ['name', 'identity', 'allow', 'topics'];
const RULE_IDENTITIES: readonly string[] = ['device', 'service', '*'];
const ACTIONS: readonly string[] = ['publish', 'subscribe'];
// Names end up in log lines: printable, one line, short.
const RULE_NAME = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]{1,128}$/;

/** Validates a parsed JSON policy; returns a frozen copy or throws AclPolicyError. */
export function parsePolicy(json: unknown): AclPolicy {
  const policy = objectAt(json, '', POLICY_KEYS);
  if (policy.version !== 1) throw new AclPolicyError('version', 'must be 1');
  const rules = arrayAt(policy.rules, 'rules').map((rule, i) => parseRule(rule, `rules[${i}]`));
  return Object.freeze({ version: 1, rules: Object.freeze(rules) });
}

/** parsePolicy for the text of a policy file; bad JSON is an AclPolicyError too. */
export function parsePolicyText(text: string): AclPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AclPolicyError('', `not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return parsePolicy(json);
}

/** the default policy (docs/reference/mqtt.md): devices own `devices/{id}/#`; services read all, send commands and watch presence. */
export const DEFAULT_POLICY: AclPolicy = parsePolicy({
  version: 1,
  rules: [
    { identity: 'device', allow: ['publish', 'subscribe'], topics: ['devices/{id}/#'] },
    { identity: 'service', allow: ['subscribe'], topics: ['devices/+/#'] },
    { identity: 'service', allow: ['publish'], topics: ['devices/+/commands/#'] },
    { identity: 'service', allow: ['subscribe'], topics: ['$tlsfleet/events/#'] },
  ],
});

/**
 * The broker's own topics (presence events, in-band renewal): no client may publish there,
 * and no device may subscribe there, whatever a policy file says, except each identity's
 * own renewal topics (CERTIFICATES_TOPIC_PREFIX). A service may subscribe where its policy
 * allows (the default policy: `$tlsfleet/events/#`), never to another identity's renewal.
 */
export const RESERVED_TOPIC_PREFIX = '$tlsfleet/';

/**
 * In-band certificate renewal (docs/reference/mqtt.md): under this prefix an identity may
 * publish to its own `renew` topic and subscribe to exactly its own `renewed` topic, whatever
 * a policy file says; no other filter that could reach a topic here is ever granted, to
 * devices or services, so no one reads or writes another identity's renewal.
 */
export const CERTIFICATES_TOPIC_PREFIX = '$tlsfleet/certificates/';

/** Where the identity `name` publishes its renewal requests. */
export function renewTopic(name: string): string {
  return `${CERTIFICATES_TOPIC_PREFIX}${name}/renew`;
}

/** Where the broker answers the renewal requests of the identity `name`. */
export function renewedTopic(name: string): string {
  return `${CERTIFICATES_TOPIC_PREFIX}${name}/renewed`;
}

const CERTIFICATES_LEVELS: readonly string[] = CERTIFICATES_TOPIC_PREFIX.split('/').slice(0, -1);

/**
 * Whether `filter` could match a topic under CERTIFICATES_TOPIC_PREFIX. A first level that
 * is a wildcard never matches a `$` topic [MQTT-4.7.2-1], so only `$tlsfleet/...` counts.
 */
export function reachesCertificateTopics(filter: string): boolean {
  const levels = filter.split('/');
  if (levels[0] !== CERTIFICATES_LEVELS[0]) return false;
  for (let i = 1; i < CERTIFICATES_LEVELS.length; i++) {
    const level = levels[i];
    if (level === undefined) return false;
    if (level === '#') return true;
    if (level !== '+' && level !== CERTIFICATES_LEVELS[i]) return false;
  }
  return true;
}

type BindableKind = 'device' | 'service';

// A rule filter split into levels once; null stands for `{id}`.
interface Template {
  readonly levels: readonly (string | null)[];
  readonly source: string;
}

interface BoundFilter {
  readonly levels: readonly string[];
  readonly source: string;
}

type Templates = Readonly<Record<AclAction, readonly Template[]>>;

export class Acl {
  readonly policy: AclPolicy;
  readonly #templates: Readonly<Record<BindableKind, Templates>>;

  /** Re-validates `policy` (default DEFAULT_POLICY), so a hand-built one cannot slip through. */
  constructor(policy: AclPolicy = DEFAULT_POLICY) {
    this.policy = parsePolicy(policy);
    this.#templates = {
      device: compileTemplates(this.policy, 'device'),
      service: compileTemplates(this.policy, 'service'),
    };
  }

  /** Call once per connection; the returned checks run on every packet. */
  forIdentity(identity: Identity): IdentityAcl {
    if (identity.kind === 'admin') return new DeniedAcl('admin identities have no broker access');
    if (identity.kind !== 'device' && identity.kind !== 'service') return new DeniedAcl('unknown identity kind');
    // Binding is safe only for names that cannot add levels or wildcards.
    if (!isValidName(identity.name)) return new DeniedAcl('identity name is not a valid id');
    const templates = this.#templates[identity.kind];
    return new BoundAcl(bindAll(templates.publish, identity.name), bindAll(templates.subscribe, identity.name), identity.kind === 'device', identity.name);
  }
}

class BoundAcl implements IdentityAcl {
  readonly #publish: readonly BoundFilter[];
  readonly #subscribe: readonly BoundFilter[];
  /**
   * The last topic allowed: a device publishes to the same few topics again and again, and
   * the broker asks on every PUBLISH. Only an allowed answer is kept (a refusal closes the
   * connection anyway), and this object never changes, so the answer cannot go stale: a
   * policy reload binds a new one.
   */
  #lastAllowed: string | undefined;
  /** Devices may not subscribe under RESERVED_TOPIC_PREFIX. */
  readonly #device: boolean;
  /** The identity's own renewal topics: the one exception under RESERVED_TOPIC_PREFIX. */
  readonly #renew: string;
  readonly #renewed: string;

  constructor(publish: readonly BoundFilter[], subscribe: readonly BoundFilter[], device: boolean, name: string) {
    this.#publish = publish;
    this.#subscribe = subscribe;
    this.#device = device;
    this.#renew = renewTopic(name);
    this.#renewed = renewedTopic(name);
  }

  canPublish(topic: string): boolean {
    if (topic === this.#renew) return true;
    // Not before the first allowed answer: undefined must not match an undefined topic.
    if (this.#lastAllowed !== undefined && topic === this.#lastAllowed) return true;
    const allowed = publishTopicProblem(topic) === undefined && !topic.startsWith(RESERVED_TOPIC_PREFIX) && this.#publisher(topic) !== undefined;
    if (allowed) this.#lastAllowed = topic;
    return allowed;
  }

  canSubscribe(filter: string): boolean {
    if (filter === this.#renewed) return true;
    // Aedes 1.x on MQTT 3.1.1 would take `$share/...` as a literal filter: refuse it.
    if (isSharedFilter(filter) || filterProblem(filter) !== undefined) return false;
    if (reachesCertificateTopics(filter)) return false;
    if (this.#device && filter.startsWith(RESERVED_TOPIC_PREFIX)) return false;
    return this.#coverer(filter) !== undefined;
  }

  explainPublish(topic: string): string {
    const problem = publishTopicProblem(topic);
    if (problem !== undefined) return `invalid topic: ${problem}`;
    if (topic === this.#renew) return 'the identity\'s own renewal requests';
    if (topic.startsWith(RESERVED_TOPIC_PREFIX)) return `topics under ${RESERVED_TOPIC_PREFIX} are the broker's own`;
    const rule = this.#publisher(topic);
    return rule === undefined ? 'no rule allows it' : `allowed by ${rule.source}`;
  }

  explainSubscribe(filter: string): string {
    const shared = sharedSubscription(filter);
    if (shared !== undefined) {
      const inner = shared.problem ?? `inner filter: ${this.#explainFilter(shared.filter)}`;
      return `shared subscriptions are not supported (${inner})`;
    }
    return this.#explainFilter(filter);
  }

  #explainFilter(filter: string): string {
    const problem = filterProblem(filter);
    if (problem !== undefined) return `invalid filter: ${problem}`;
    if (filter === this.#renewed) return 'the identity\'s own renewal answers';
    if (reachesCertificateTopics(filter)) return `under ${CERTIFICATES_TOPIC_PREFIX} only the identity's own ${this.#renewed} may be subscribed`;
    if (this.#device && filter.startsWith(RESERVED_TOPIC_PREFIX)) return `devices may not subscribe under ${RESERVED_TOPIC_PREFIX}`;
    const rule = this.#coverer(filter);
    return rule === undefined ? 'no rule covers it' : `allowed by ${rule.source}`;
  }

  #publisher(topic: string): BoundFilter | undefined {
    for (let i = 0; i < this.#publish.length; i++) {
      const rule = this.#publish[i] as BoundFilter;
      if (levelsMatch(rule.levels, topic)) return rule;
    }
    return undefined;
  }

  // One rule must cover the whole filter; coverage pieced together from several rules is
  // not looked for, so such a subscription is refused (fails closed).
  #coverer(filter: string): BoundFilter | undefined {
    if (this.#subscribe.length === 0) return undefined;
    const levels = filter.split('/');
    return this.#subscribe.find((rule) => levelsCover(rule.levels, levels));
  }
}

class DeniedAcl implements IdentityAcl {
  readonly #reason: string;

  constructor(reason: string) {
    this.#reason = reason;
  }

  canPublish(): boolean {
    return false;
  }

  canSubscribe(): boolean {
    return false;
  }

  explainPublish(): string {
    return this.#reason;
  }

  explainSubscribe(): string {
    return this.#reason;
  }
}

function compileTemplates(policy: AclPolicy, kind: BindableKind): Templates {
  const publish: Template[] = [];
  const subscribe: Template[] = [];
  policy.rules.forEach((rule, i) => {
    if (rule.identity !== kind && rule.identity !== '*') return;
    const label = rule.name === undefined ? `rules[${i}]` : `rules[${i}] ${JSON.stringify(rule.name)}`;
    for (const topic of rule.topics) {
      const template = {
        levels: topic.split('/').map((level) => (level === ID_LEVEL ? null : level)),
        source: `${label} (${JSON.stringify(topic)})`,
      };
      if (rule.allow.includes('publish')) publish.push(template);
      if (rule.allow.includes('subscribe')) subscribe.push(template);
    }
  });
  return { publish, subscribe };
}

function bindAll(templates: readonly Template[], name: string): readonly BoundFilter[] {
  return templates.map((t) => ({ levels: t.levels.map((level) => level ?? name), source: t.source }));
}

function parseRule(json: unknown, path: string): AclRule {
  const rule = objectAt(json, path, RULE_KEYS);
  const identity = rule.identity;
  if (typeof identity !== 'string' || !RULE_IDENTITIES.includes(identity)) {
    throw new AclPolicyError(`${path}.identity`, 'must be "device", "service" or "*"');
  }
  const allow = nonEmptyArrayAt(rule.allow, `${path}.allow`).map((action, i, all) => {
    if (typeof action !== 'string' || !ACTIONS.includes(action)) {
      throw new AclPolicyError(`${path}.allow[${i}]`, 'must be "publish" or "subscribe"');
    }
    if (all.indexOf(action) !== i) throw new AclPolicyError(`${path}.allow[${i}]`, `repeats "${action}"`);
    return action as AclAction;
  });
  const topics = nonEmptyArrayAt(rule.topics, `${path}.topics`).map((topic, i) => {
    const problem = ruleFilterProblem(topic);
    if (problem !== undefined) throw new AclPolicyError(`${path}.topics[${i}]`, problem);
    return topic as string;
  });
  const parsed: { name?: string; identity: AclRuleIdentity; allow: readonly AclAction[]; topics: readonly string[] } = {
    identity: identity as AclRuleIdentity,
    allow: Object.freeze(allow),
    topics: Object.freeze(topics),
  };
  if (rule.name !== undefined) {
    if (typeof rule.name !== 'string' || !RULE_NAME.test(rule.name)) {
      throw new AclPolicyError(`${path}.name`, 'must be a non-empty string of at most 128 printable characters');
    }
    parsed.name = rule.name;
  }
  return Object.freeze(parsed);
}

function ruleFilterProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return 'must be a string';
  const problem = filterProblem(topic);
  if (problem !== undefined) return problem;
  if (isSharedFilter(topic)) return '"$share" filters cannot be used in rules';
  for (const level of topic.split('/')) {
    if (level === ID_LEVEL) continue;
    if (level.includes(ID_LEVEL)) return '"{id}" must be a whole level';
    // Literal braces are legal MQTT, but here they are far likelier a mistyped placeholder.
    if (level.includes('{') || level.includes('}')) return '"{" and "}" may only appear as the whole level "{id}"';
  }
  return undefined;
}

// Own properties only, copied onto a null prototype: a polluted Object.prototype or a
// sparse hand-built array cannot supply a field.
function objectAt(json: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AclPolicyError(path, 'must be an object');
  const own: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(json)) {
    if (!keys.includes(key)) throw new AclPolicyError(path === '' ? key : `${path}.${key}`, `unknown key (expected ${keys.join(', ')})`);
    own[key] = (json as Record<string, unknown>)[key];
  }
  return own;
}

function arrayAt(json: unknown, path: string): unknown[] {
  if (!Array.isArray(json)) throw new AclPolicyError(path, 'must be an array');
  const items: unknown[] = [];
  for (let i = 0; i < json.length; i++) items.push(Object.hasOwn(json, i) ? json[i] : undefined);
  return items;
}

function nonEmptyArrayAt(json: unknown, path: string): unknown[] {
  const items = arrayAt(json, path);
  if (items.length === 0) throw new AclPolicyError(path, 'must not be empty');
  return items;
}
