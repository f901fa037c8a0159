import { describe, expect, it } from 'vitest';
import { escapeHtml, html, joinHtml, jsonForScriptElement, SafeHtml } from './html-escape.js';

describe('html', () => {
  it('escapes every interpolated string and number but keeps SafeHtml and lists of it', () => {
    const cells = ['<b>', 'a & b'].map((c) => html`<td>${c}</td>`);
    expect(html`<tr title="${'"x"'}">${cells}${joinHtml([new SafeHtml('<td>1</td>')])}</tr>`.markup).toBe(
      '<tr title="&quot;x&quot;"><td>&lt;b&gt;</td><td>a &amp; b</td><td>1</td></tr>',
    );
  });

  it('escapes the five characters that matter in content and quoted attributes', () => {
    expect(escapeHtml(`<a href='x' title="y">&</a>`)).toBe('&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;');
  });
});

describe('jsonForScriptElement', () => {
  const cases = ['</script><script>alert(1)</script>', '<!-- <script>', ']]> & \u2028\u2029', 'plain'];
  it.each(cases)('writes %j with no "<", ">" or "&" and reads it back unchanged', (text) => {
    const json = jsonForScriptElement({ text });
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(json)).toEqual({ text });
  });
});
