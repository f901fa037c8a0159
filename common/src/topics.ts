/**
 * MQTT 3.1.1 topic names, topic filters and the relations between them (§4.7).
 * The broker runs these on every PUBLISH, so the checks scan strings without
 * allocating.
 */

// UTF-8 encoded strings carry a two-byte length prefix [MQTT-1.5.3], [MQTT-4.7.3-3].
const MAX_BYTES = 65_535;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const SLASH = '/';
const SHARE_LEVEL = '$share';

/** Undefined when `topic` may be published to; otherwise a short reason. */
export function publishTopicProblem(topic: string): string | undefined {
  // Hooks receive packets typed by hand-written declarations; refuse, never throw.
  if (typeof topic !== 'string') return 'not a string';
  if (topic.length === 0) return 'empty topic'; // [MQTT-4.7.3-1]
  return textProblem(topic, true);
}

/** Undefined when `filter` is a valid topic filter; otherwise a short reason. */
export function filterProblem(filter: string): string | undefined {
  if (typeof filter !== 'string') return 'not a string';
  if (filter.length === 0) return 'empty filter'; // [MQTT-4.7.3-1]
  const problem = textProblem(filter, false);
  if (problem !== undefined) return problem;
  const levels = filter.split(SLASH);
  const last = levels.length - 1;
  for (let i = 0; i <= last; i++) {
    const level = levels[i] as string;
    if (level.includes('#')) {
      // [MQTT-4.7.1-2]
      if (level !== '#') return '"#" must be a whole level';
      if (i !== last) return '"#" may only be the last level';
    } else if (level.includes('+') && level !== '+') {
      return '"+" must be a whole level'; // [MQTT-4.7.1-3]
    }
  }
  return undefined;
}

/**
 * True when `topic` matches `filter`. Either being invalid answers false, so a caller
 * that forgot to validate fails closed.
 */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  if (filterProblem(filter) !== undefined || publishTopicProblem(topic) !== undefined) return false;
  return levelsMatch(filter.split(SLASH), topic);
}

/**
 * True iff every topic that `inner` matches is also matched by `outer`. Either being
 * invalid answers false.
 */
export function filterCovers(outer: string, inner: string): boolean {
  if (filterProblem(outer) !== undefined || filterProblem(inner) !== undefined) return false;
  return levelsCover(outer.split(SLASH), inner.split(SLASH));
}

/**
 * A `$share/<group>/<filter>` subscription (MQTT 5 §4.8.2 syntax; plain MQTT 3.1.1
 * treats it as an ordinary filter). `problem` is set when it is malformed; group and
 * filter then hold whatever was there, possibly ''.
 */
export interface SharedSubscription {
  readonly group: string;
  readonly filter: string;
  readonly problem: string | undefined;
}

/** Undefined when the first level is not exactly `$share`; never throws. */
export function sharedSubscription(filter: string): SharedSubscription | undefined {
  if (!isSharedFilter(filter)) return undefined;
  const rest = filter.slice(SHARE_LEVEL.length + 1);
  const slash = rest.indexOf(SLASH);
  const group = slash === -1 ? rest : rest.slice(0, slash);
  const inner = slash === -1 ? '' : rest.slice(slash + 1);
  return { group, filter: inner, problem: sharedProblem(group, inner) };
}

/** True when the first level is exactly `$share` (case-sensitive, as all topics are). */
export function isSharedFilter(filter: string): boolean {
  return typeof filter === 'string' && filter.startsWith(SHARE_LEVEL) && (filter.length === SHARE_LEVEL.length || filter[SHARE_LEVEL.length] === SLASH);
}

/**
 * Matching on a filter already split into levels; both sides must be valid. Walks the
 * topic in place so a precompiled filter costs no allocation per PUBLISH.
 */
export function levelsMatch(filterLevels: readonly string[], topic: string): boolean {
  const first = filterLevels[0];
  // [MQTT-4.7.2-1] a leading wildcard never matches a topic starting with '$'.
  if (topic.charCodeAt(0) === DOLLAR && (first === '+' || first === '#')) return false;
  let pos = 0;
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i] as string;
    if (level === '#') return true; // [MQTT-4.7.1-2] also matches the parent level
    if (pos > topic.length) return false;
    let end = topic.indexOf(SLASH, pos);
    if (end === -1) end = topic.length;
    // [MQTT-4.7.1-3] '+' matches exactly one level, an empty one included.
    if (level !== '+' && (end - pos !== level.length || !topic.startsWith(level, pos))) return false;
    pos = end + 1;
  }
  return pos > topic.length;
}

/** Covering on filters already split into levels; both must be valid. */
export function levelsCover(outer: readonly string[], inner: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const o = outer[i];
    const n = inner[i];
    // [MQTT-4.7.2-1] a leading wildcard cannot reach what a literal '$...' level matches.
    if (i === 0 && (o === '+' || o === '#') && n !== undefined && n.charCodeAt(0) === DOLLAR) return false;
    if (o === '#') return true;
    if (o === undefined) return n === undefined;
    if (n === undefined) return false; // inner stops here; outer needs another level
    // Inner '#' matches its parent (the first i levels) and every depth below; outer
    // '+/#' reaches only the depths below. They agree when the parent is the empty
    // string, never a valid topic [MQTT-4.7.3-1]: '+/#' covers '#', '/+/#' covers '/#'.
    if (n === '#') return o === '+' && outer[i + 1] === '#' && (i === 0 || (i === 1 && inner[0] === ''));
    if (o !== '+' && o !== n) return false;
  }
}

// One pass for everything a string may not contain; also counts UTF-8 bytes.
function textProblem(text: string, forbidWildcards: boolean): string | undefined {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return 'contains U+0000'; // [MQTT-1.5.3-2], [MQTT-4.7.3-2]
    // mqtt-packet decodes with Buffer 'utf8', which turns ill-formed UTF-8 into U+FFFD;
    // refusing it is the only way left to honour [MQTT-1.5.3-1].
    if (c === 0xfffd) return 'contains U+FFFD (invalid UTF-8)';
    if (forbidWildcards && (c === PLUS || c === HASH)) return 'wildcards "+" and "#" are not allowed in a topic name'; // [MQTT-3.3.2-2]
    if (c >= 0xd800 && c <= 0xdfff) {
      // Only reachable from JS callers or policy files, never off the wire; a lone
      // surrogate has no UTF-8 encoding [MQTT-1.5.3-1].
      const next = text.charCodeAt(i + 1);
      if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) return 'contains a lone surrogate';
      i++;
      bytes += 4;
      continue;
    }
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return bytes > MAX_BYTES ? `longer than ${MAX_BYTES} UTF-8 bytes` : undefined;
}

function sharedProblem(group: string, inner: string): string | undefined {
  if (group.length === 0) return 'shared subscription needs a group name';
  if (group.includes('+') || group.includes('#')) return 'shared subscription group name must not contain "+" or "#"';
  const groupProblem = textProblem(group, false);
  if (groupProblem !== undefined) return `shared subscription group name: ${groupProblem}`;
  if (inner.length === 0) return 'shared subscription needs a topic filter';
  const innerProblem = filterProblem(inner);
  return innerProblem === undefined ? undefined : `shared subscription filter: ${innerProblem}`;
}
