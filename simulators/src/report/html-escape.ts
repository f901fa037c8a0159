// Everything the report puts into markup goes through here, so that no device id, error
// code or event label from a run can add elements or scripts to the page.

/** Markup known to be safe: made by `html` and `joinHtml`, or our own constant markup (style, script); never raw data. */
export class SafeHtml {
  constructor(readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

/** A value interpolated into `html`: text is escaped, SafeHtml is kept as it is. */
export type HtmlValue = string | number | SafeHtml | readonly SafeHtml[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Template tag: the literal parts are markup, every interpolated value is escaped unless it is SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let markup = strings[0]!;
  values.forEach((value, i) => {
    markup += markupOf(value) + strings[i + 1]!;
  });
  return new SafeHtml(markup);
}

export function joinHtml(parts: readonly SafeHtml[], separator = ''): SafeHtml {
  return new SafeHtml(parts.map((p) => p.markup).join(separator));
}

function markupOf(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.markup;
  if (typeof value === 'string' || typeof value === 'number') return escapeHtml(String(value));
  return value.map((v) => v.markup).join('');
}

/**
 * JSON for the body of a `<script type="application/json">`. The body is raw text that
 * ends at the first `</script`, and `<!--` changes how that end is found (HTML §4.12.1.3),
 * so `<`, `>` and `&` become \u escapes, which JSON.parse reads back unchanged. U+2028/9 too,
 * so the text stays valid if someone pastes it into a JS string.
 */
export function jsonForScriptElement(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
