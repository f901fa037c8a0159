// The parts of the report written in Node as plain HTML (header, verdicts, key figures),
// so they read the same with scripts off, plus the empty chart frames the page script fills.
import type { FleetSummary, Percentiles } from './fleet-summary.js';
import { html, joinHtml, type SafeHtml } from './html-escape.js';
import { formatBytes, formatCount, formatDuration, formatMs } from './report-format.js';

/** Each chart the page script draws, by the `data-chart` name it looks for. */
export const CHARTS = [
  { name: 'connected', caption: 'Connected devices' },
  { name: 'message-rate', caption: 'Message rate: sent and received per second' },
  { name: 'latency', caption: 'End-to-end latency: p50 and p99' },
  { name: 'enrollment-latency', caption: 'Enrollment latency' },
  { name: 'connect-latency', caption: 'TLS handshake + CONNACK latency' },
  { name: 'errors', caption: 'Errors by code (grey: expected during a planned broker restart)' },
] as const;

export function renderHeader(summary: FleetSummary): SafeHtml {
  const { config } = summary;
  const verdict = passFail(summary.scenario.pass);
  const run = [
    `${formatCount(config.devices)} devices`,
    `ramp ${formatCount(config.ramp)}/s`,
    `QoS ${config.qos} every ${formatDuration(config.publishIntervalMs)}`,
    `${formatCount(config.payloadBytes)} B payload`,
    `${formatDuration(config.durationMs)} run`,
    `certificates ${formatDuration(config.certTtlSeconds * 1000)}`,
    `${formatCount(config.workers)} workers`,
  ].join(' · ');
  return html`<header class="run ${verdict.toLowerCase()}">
<div class="run-title">
<h1>Fleet simulation: <span class="scenario">${summary.scenario.name}</span></h1>
<p class="run-meta">${run}</p>
<p class="run-meta">broker ${config.brokerUrl} · provisioning ${config.provisioningUrl} · ${summary.startedAt} → ${summary.finishedAt}</p>
</div>
<div class="badge" id="verdict">${verdict}</div>
</header>`;
}

export function renderVerdicts(summary: FleetSummary): SafeHtml {
  const rows = summary.scenario.verdicts.map(
    (v) => html`<tr class="${passFail(v.pass).toLowerCase()}"><td>${v.name}</td><td>${v.limit}</td><td>${v.measured}</td><td class="result">${passFail(v.pass)}</td></tr>`,
  );
  const body = rows.length > 0 ? joinHtml(rows, '\n') : html`<tr><td colspan="4">no verdicts stated for this scenario</td></tr>`;
  return html`<section>
<h2>Verdicts</h2>
<table class="verdicts">
<thead><tr><th>check</th><th>limit</th><th>measured</th><th>result</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
</section>`;
}

interface KeyFigure {
  label: string;
  value: string;
  /** Shown in red: a figure that should be zero and is not. */
  bad?: boolean;
}

export function renderFigures(summary: FleetSummary): SafeHtml {
  const { totals, latency, resources, config } = summary;
  const figures: KeyFigure[] = [
    { label: 'devices', value: formatCount(config.devices) },
    { label: 'enrolled', value: enrolledText(summary), bad: totals.enrollFailed > 0 },
    { label: 'connected peak', value: formatCount(totals.connectedPeak) },
    { label: 'sent', value: formatCount(totals.sent) },
    { label: 'acked', value: formatCount(totals.acked) },
    { label: 'received', value: formatCount(totals.received) },
    { label: 'lost', value: formatCount(totals.lost), bad: totals.lost > 0 },
    { label: 'duplicated', value: formatCount(totals.duplicated), bad: totals.duplicated > 0 },
    { label: 'out of order', value: formatCount(totals.outOfOrder), bad: totals.outOfOrder > 0 },
    { label: 'renewals done', value: formatCount(totals.renewals) },
    { label: 'renewals failed', value: formatCount(totals.renewalFailures), bad: totals.renewalFailures > 0 },
    { label: 'end-to-end p50', value: percentile(latency.endToEnd, 'p50') },
    { label: 'end-to-end p99', value: percentile(latency.endToEnd, 'p99') },
    { label: 'enrollment p99', value: percentile(latency.enrollment, 'p99') },
    { label: 'handshake + CONNACK p99', value: percentile(latency.connect, 'p99') },
    { label: 'CPU per device', value: formatMs(resources.cpuMsPerDevice) },
    { label: 'RSS per device', value: formatBytes(resources.rssBytesPerDevice) },
  ];
  const items = figures.map((f) => html`<div class="figure${f.bad ? ' bad' : ''}"><dt>${f.label}</dt><dd>${f.value}</dd></div>`);
  return html`<section>
<h2>Key figures</h2>
<dl class="figures">
${joinHtml(items, '\n')}
</dl>
</section>`;
}

/** The renewals: routes, rate, the services' CPU meanwhile, publish waits against the handshake. Empty without renewal figures. */
export function renderRenewals(summary: FleetSummary): SafeHtml {
  const r = summary.renewal;
  if (r === undefined) return html``;
  const cpu = (seconds: number | undefined, perRenewal: number | undefined) => (seconds === undefined ? '—' : `${seconds.toFixed(2)} CPU-s (${formatMs(perRenewal ?? 0)} per renewal)`);
  const figures: KeyFigure[] = [
    { label: 'path asked', value: r.path },
    { label: 'renewed in-band (MQTT)', value: formatCount(r.inBand), bad: r.path === 'inband' && r.https + r.unknownRoute > 0 },
    { label: 'renewed over HTTPS', value: formatCount(r.https) },
    { label: 'renewals, first → last', value: r.firstAt === null ? '—' : `${r.firstAt} s → ${r.lastAt} s` },
    { label: 'renewal rate, peak', value: `${formatCount(r.peakPerSecond)}/s` },
    { label: 'renewal rate, mean', value: `${r.meanPerSecond.toFixed(1)}/s` },
    { label: 'provisioning CPU during renewals', value: cpu(r.provisioningCpuSeconds, r.provisioningCpuMsPerRenewal) },
    { label: 'broker CPU during renewals', value: cpu(r.brokerCpuSeconds, r.brokerCpuMsPerRenewal) },
    { label: 'publish → PUBACK away from swaps p99 / max', value: `${percentile(r.calmPublishWait, 'p99')} / ${r.calmPublishWait.count > 0 ? formatMs(r.calmPublishWait.max) : '—'}` },
    { label: 'during swaps p99 / max', value: `${percentile(r.swapPublishWait, 'p99')} / ${r.swapPublishWait.count > 0 ? formatMs(r.swapPublishWait.max) : '—'}`, bad: r.swapPublishWait.max > r.blockLimitMs },
    { label: 'handshake p50 / max', value: `${percentile(r.handshake, 'p50')} / ${r.handshake.count > 0 ? formatMs(r.handshake.max) : '—'}` },
    { label: 'swap wait limit', value: formatMs(r.blockLimitMs) },
  ];
  const items = figures.map((f) => html`<div class="figure${f.bad ? ' bad' : ''}"><dt>${f.label}</dt><dd>${f.value}</dd></div>`);
  return html`<section id="renewals">
<h2>Renewals</h2>
<dl class="figures">
${joinHtml(items, '\n')}
</dl>
</section>`;
}

export function renderChartFrames(): SafeHtml {
  const frames = CHARTS.map((c) => html`<figure class="chart" data-chart="${c.name}"><figcaption>${c.caption}</figcaption></figure>`);
  return html`<section>
<h2>Charts</h2>
<div class="charts">
${joinHtml(frames, '\n')}
</div>
</section>`;
}

const passFail = (pass: boolean): 'PASS' | 'FAIL' => (pass ? 'PASS' : 'FAIL');

function enrolledText(summary: FleetSummary): string {
  const { enrolled, reused, enrollFailed } = summary.totals;
  const extra = [reused > 0 ? `${formatCount(reused)} reused` : '', enrollFailed > 0 ? `${formatCount(enrollFailed)} failed` : ''].filter(Boolean);
  return extra.length > 0 ? `${formatCount(enrolled)} (${extra.join(', ')})` : formatCount(enrolled);
}

/** A percentile of a histogram that saw no samples is not 0 ms: it was not measured. */
function percentile(p: Percentiles, key: 'p50' | 'p99'): string {
  return p.count > 0 ? formatMs(p[key]) : '—';
}
