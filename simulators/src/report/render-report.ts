import { createHash } from 'node:crypto';
import type { FleetSummary } from './fleet-summary.js';
import { html, jsonForScriptElement, SafeHtml } from './html-escape.js';
import { REPORT_SCRIPT } from './report-script.js';
import { renderChartFrames, renderFigures, renderHeader, renderRenewals, renderVerdicts } from './report-sections.js';
import { REPORT_STYLE } from './report-style.js';

/**
 * report.html for one run: a single file that loads nothing (no scripts, fonts, images or
 * network), so it can be mailed, archived or opened offline. Header, verdicts and key
 * figures are plain HTML; the charts are drawn by the inline script from the summary
 * embedded as JSON in `<script type="application/json" id="summary">`.
 */
export function renderReport(summary: FleetSummary): string {
  const verdict = summary.scenario.pass ? 'PASS' : 'FAIL';
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy()}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tlsfleet simulate: ${summary.scenario.name} ${verdict}</title>
<style>${new SafeHtml(REPORT_STYLE)}</style>
</head>
<body>
${renderHeader(summary)}
${renderVerdicts(summary)}
${renderFigures(summary)}
${renderRenewals(summary)}
${renderChartFrames()}
<script type="application/json" id="summary">${new SafeHtml(jsonForScriptElement(summary))}</script>
<script>${new SafeHtml(REPORT_SCRIPT)}</script>
</body>
</html>
`;
  return page.markup;
}

/**
 * The page may run only its own script and style (by hash) and fetch nothing at all:
 * even if some data slipped past the escaping, an injected script would not run and
 * nothing could be loaded from the network.
 */
function contentSecurityPolicy(): string {
  return [
    "default-src 'none'",
    `script-src '${sha256(REPORT_SCRIPT)}'`,
    `style-src '${sha256(REPORT_STYLE)}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

const sha256 = (text: string): string => `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
