import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSummary } from './fleet-summary.js';
import { renderReport } from './render-report.js';
import { REPORT_SCRIPT } from './report-script.js';
import { escapeHtml } from './html-escape.js';
import { CHARTS } from './report-sections.js';
import { sampleSummary } from './sample-summary.fixture.js';
import { chartIn, CHROMIUM_TIMEOUT_MS, dumpDom } from './chromium.fixture.js';

/** Tries to end its script element, run its own script, and add an element with a handler. */
const HOSTILE = '</script><script>document.body.dataset.pwned = "1"</script><img src=x onerror="document.body.dataset.pwned = 1"><!--';

type ChartName = (typeof CHARTS)[number]['name'];

/** Line charts with their number of series, and bar charts. */
const TIME_CHARTS: [ChartName, number][] = [['connected', 1], ['message-rate', 2], ['latency', 2]];
const BAR_CHARTS: ChartName[] = ['enrollment-latency', 'connect-latency', 'errors'];

function hostileSummary(): FleetSummary {
  const summary = sampleSummary();
  summary.errors[HOSTILE] = 7;
  summary.events.push({ t: 20, label: HOSTILE });
  summary.scenario.verdicts.push({ name: HOSTILE, limit: HOSTILE, measured: HOSTILE, pass: true });
  summary.config.brokerUrl = HOSTILE;
  return summary;
}

function emptySummary(): FleetSummary {
  const summary = sampleSummary();
  summary.timeline = [];
  summary.histograms = { enrollmentMs: [], connectMs: [] };
  summary.errors = {};
  delete summary.expectedErrors;
  summary.events = [];
  summary.scenario = { name: 'steady', pass: true, verdicts: [{ name: 'messages lost', limit: '0', measured: '0', pass: true }] };
  return summary;
}

/** What each chart must plot for `summary`: every non-null timeline value, every bucket, every error code. */
function expectedPoints(summary: FleetSummary): Record<ChartName, number> {
  const measured = (key: 'p50' | 'p99') => summary.timeline.filter((p) => p[key] !== null).length;
  return {
    connected: summary.timeline.length,
    'message-rate': 2 * summary.timeline.length,
    latency: measured('p50') + measured('p99'),
    'enrollment-latency': summary.histograms.enrollmentMs.length,
    'connect-latency': summary.histograms.connectMs.length,
    errors: Object.keys(summary.errors).length + Object.keys(summary.expectedErrors?.counts ?? {}).length,
  };
}

let dir: string;
const dom = { sample: '', hostile: '', empty: '' };

async function renderInChromium(name: string, summary: FleetSummary): Promise<string> {
  const htmlFile = join(dir, `${name}.html`);
  await writeFile(htmlFile, renderReport(summary));
  return dumpDom(htmlFile, await mkdtemp(join(dir, `profile-${name}-`)));
}

const occurrences = (text: string, pattern: RegExp): number => text.match(pattern)?.length ?? 0;
const linePaths = /<path\b[^>]*\bclass="line\b/g;
const bars = /<rect\b[^>]*\bclass="bar\b/g;

/** A text node as chromium serializes it: only &, < and > escaped. */
const asSerializedText = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-report-'));
  [dom.sample, dom.hostile, dom.empty] = await Promise.all([
    renderInChromium('sample', sampleSummary()),
    renderInChromium('hostile', hostileSummary()),
    renderInChromium('empty', emptySummary()),
  ]);
}, CHROMIUM_TIMEOUT_MS + 10_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('report.html in headless chromium', () => {
  it('draws every chart of the sample run with one point per value, one bar per bucket or error code', () => {
    const expected = expectedPoints(sampleSummary());
    expect(expected.latency).toBeLessThan(expected['message-rate']); // the sample's outage leaves latency gaps
    for (const { name } of CHARTS) {
      const { attributes, content } = chartIn(dom.sample, name);
      expect(attributes, name).toMatchObject({ 'data-drawn': 'true', 'data-points': String(expected[name]) });
      expect(content, name).toContain('<svg');
      expect(content, name).not.toContain('no data');
    }
    for (const [name, series] of TIME_CHARTS) {
      const { content } = chartIn(dom.sample, name);
      expect(occurrences(content, linePaths), name).toBe(series);
      expect(content, name).toContain('time since start (s)');
      expect(content, name).toContain('>broker restart<title>'); // an event mark's label
    }
    for (const name of BAR_CHARTS) {
      expect(occurrences(chartIn(dom.sample, name).content, bars), name).toBe(expected[name]);
    }
    expect(chartIn(dom.sample, 'connected').content).toContain('>1k</text>'); // a y tick label
    expect(chartIn(dom.sample, 'errors').content).toContain('>rate_limited<title>rate_limited</title></text>');
    // A planned restart's refusals are grey and say why, not red errors.
    expect(chartIn(dom.sample, 'errors').content).toContain('>connection_refused (expected)<title>connection_refused: reconnecting: broker restarted (expected in this scenario)</title></text>');
    expect(chartIn(dom.sample, 'errors').content).toMatch(/class="bar expected"[^>]*>(<title>)?connection_refused: 1730 \(reconnecting: broker restarted/);
  });

  it('shows the scenario, a big FAIL and every verdict with its limit, measurement and result', () => {
    expect(dom.sample).toContain('<div class="badge" id="verdict">FAIL</div>');
    expect(dom.sample).toContain('<span class="scenario">reconnect-storm</span>');
    for (const v of sampleSummary().scenario.verdicts) {
      const result = v.pass ? 'PASS' : 'FAIL';
      const cells = [v.name, v.limit, v.measured].map((c) => `<td>${asSerializedText(c)}</td>`).join('');
      expect(dom.sample).toContain(`<tr class="${result.toLowerCase()}">${cells}<td class="result">${result}</td></tr>`);
    }
    expect(dom.sample).toMatch(/<dt>lost<\/dt><dd>3<\/dd>/);
  });

  it('shows a hostile error code, event label and verdict as text and lets none of it inject markup', () => {
    for (const { name } of CHARTS) expect(chartIn(dom.hostile, name).attributes['data-drawn'], name).toBe('true');
    const text = asSerializedText(HOSTILE);
    expect(chartIn(dom.hostile, 'errors').content).toContain(`<title>${text}</title>`);
    expect(chartIn(dom.hostile, 'connected').content).toContain(`>${text}<title>`);
    expect(dom.hostile).toContain(`<td>${text}</td>`);
    expect(dom.hostile).toContain(`broker ${text} ·`);
    expect(dom.hostile).not.toContain('data-pwned');
    expect(occurrences(dom.hostile, /<script\b/g)).toBe(2);
    expect(occurrences(dom.hostile, /<img\b/g)).toBe(0);
  });

  it('draws "no data" in every chart of a run with an empty timeline, no samples and no errors, and shows PASS', () => {
    for (const { name } of CHARTS) {
      const { attributes, content } = chartIn(dom.empty, name);
      expect(attributes, name).toMatchObject({ 'data-drawn': 'true', 'data-points': '0' });
      expect(content, name).toContain('>no data</text>');
      expect(occurrences(content, linePaths) + occurrences(content, bars), name).toBe(0);
    }
    expect(dom.empty).toContain('<div class="badge" id="verdict">PASS</div>');
  });
});

describe('report.html as a file', () => {
  it('loads nothing: no src, href or url(), a policy that forbids fetching, and no http(s) URL but the run’s own endpoints and the SVG namespace', () => {
    const page = renderReport(sampleSummary());
    expect(page).not.toMatch(/\s(?:src|href|xlink:href|srcset|action|poster)\s*=|url\(|@import|<link|<iframe|<object|<embed/i);
    expect(page).toContain(`content="${escapeHtml("default-src 'none';")}`);
    const urls = new Set(page.match(/https?:\/\/[^\s"'<>)]+/g));
    expect(urls).toEqual(new Set(['https://127.0.0.1:8443', 'http://www.w3.org/2000/svg']));
  });

  it('embeds the summary as JSON that reads back equal and holds no "<", whatever the strings in it', () => {
    const summary = hostileSummary();
    const embedded = /<script type="application\/json" id="summary">([\s\S]*?)<\/script>/.exec(renderReport(summary))?.[1];
    expect(embedded).toBeDefined();
    expect(embedded).not.toContain('<');
    expect(JSON.parse(embedded!)).toEqual(summary);
  });

  it('has a page script that cannot end its own element early', () => {
    expect(REPORT_SCRIPT).not.toMatch(/<\/script|<!--/i);
  });

  it('stays small: the page without its data is under 24 KiB', () => {
    const summary = emptySummary();
    expect(Buffer.byteLength(renderReport(summary)) - Buffer.byteLength(JSON.stringify(summary))).toBeLessThan(24 * 1024);
  });
});
