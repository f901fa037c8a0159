// The page's only script: it reads the summary embedded in the page and draws each
// `data-chart` figure as SVG. It is a string because it runs in the browser, not in Node
// (so: no backticks and no dollar-brace in it). Data reaches the DOM only through
// textContent and setAttribute, never as markup, so a hostile label stays text.
//
// Contract with the tests: after drawing, each figure has data-drawn="true" and
// data-points = the points (line charts, all series) or bars it plotted; 0 with a
// "no data" text when there was nothing to plot; data-drawn="false" and data-error if
// drawing threw.
export const REPORT_SCRIPT = String.raw`
(() => {
  'use strict';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const WIDTH = 640;
  const HEIGHT = 260;
  const MAX_ERROR_BARS = 12;

  const summary = JSON.parse(document.getElementById('summary').textContent);
  const timeline = Array.isArray(summary.timeline) ? summary.timeline : [];
  const events = Array.isArray(summary.events) ? summary.events.filter((e) => isNumber(e.t)) : [];

  function isNumber(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  function svg(parent, name, attributes) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    parent.appendChild(node);
    return node;
  }

  function svgText(parent, attributes, text) {
    const node = svg(parent, 'text', attributes);
    node.textContent = text;
    return node;
  }

  function tooltip(parent, text) {
    svg(parent, 'title').textContent = text;
  }

  /** 1234 → "1.2k"; 0.25 → "0.25". */
  function tickLabel(v) {
    const abs = Math.abs(v);
    if (abs >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
    if (abs >= 1e3) return +(v / 1e3).toPrecision(3) + 'k';
    return String(+v.toPrecision(3));
  }

  /** Spread-free maximum: a long run's timeline can hold more values than a call takes arguments. */
  function maxOf(values) {
    return values.reduce((max, v) => (v > max ? v : max), -Infinity);
  }

  /** Ticks from 0 in steps of 1, 2 or 5 × 10^k, about count of them, the last one ≥ max. */
  function ticksUpTo(max, count) {
    const top = max > 0 ? max : 1;
    const rough = top / count;
    const magnitude = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough);
    const steps = Math.max(1, Math.ceil(top / step - 1e-9));
    return Array.from({ length: steps + 1 }, (_, i) => +(i * step).toPrecision(12));
  }

  function linear(domainMax, from, to) {
    return (v) => from + (v / (domainMax || 1)) * (to - from);
  }

  /** An empty chart area: the drawing box, and the plot rectangle inside its margins. */
  function plotArea(figure, left, top) {
    const root = svg(figure, 'svg', { viewBox: '0 0 ' + WIDTH + ' ' + HEIGHT, class: 'plot', role: 'img' });
    return { root, left, right: WIDTH - 20, top: top || 30, bottom: HEIGHT - 44 };
  }

  function noData(figure) {
    const area = plotArea(figure, 0);
    svgText(area.root, { x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle', class: 'no-data' }, 'no data');
    return 0;
  }

  /** Horizontal grid lines with labels on the left, the axis line, and the rotated title. */
  function valueAxisLeft(area, ticks, y, title) {
    for (const v of ticks) {
      svg(area.root, 'line', { x1: area.left, x2: area.right, y1: y(v), y2: y(v), class: 'grid' });
      svgText(area.root, { x: area.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, tickLabel(v));
    }
    svg(area.root, 'line', { x1: area.left, x2: area.left, y1: area.top, y2: area.bottom, class: 'axis' });
    const middle = (area.top + area.bottom) / 2;
    svgText(area.root, { x: -middle, y: 12, transform: 'rotate(-90)', 'text-anchor': 'middle', class: 'axis-title' }, title);
  }

  /** Tick marks with labels under the plot, the axis line, and the title. */
  function valueAxisBottom(area, ticks, x, title) {
    for (const v of ticks) {
      svg(area.root, 'line', { x1: x(v), x2: x(v), y1: area.bottom, y2: area.bottom + 5, class: 'axis' });
      svgText(area.root, { x: x(v), y: area.bottom + 17, 'text-anchor': 'middle' }, tickLabel(v));
    }
    bottomAxisLine(area, title);
  }

  function bottomAxisLine(area, title) {
    svg(area.root, 'line', { x1: area.left, x2: area.right, y1: area.bottom, y2: area.bottom, class: 'axis' });
    svgText(area.root, { x: (area.left + area.right) / 2, y: HEIGHT - 6, 'text-anchor': 'middle', class: 'axis-title' }, title);
  }

  function legend(area, series) {
    let x = area.left;
    for (const s of series) {
      svg(area.root, 'rect', { x, y: 8, width: 10, height: 10, class: 'swatch ' + s.color });
      svgText(area.root, { x: x + 14, y: 17, class: 'axis-title' }, s.label);
      x += 24 + 7 * s.label.length;
    }
  }

  /** A dashed vertical line per event, its label staggered over three rows so neighbours do not overlap. */
  function eventMarks(area, x) {
    events.forEach((event, i) => {
      const at = x(event.t);
      const nearRightEdge = at > area.right - 120;
      svg(area.root, 'line', { x1: at, x2: at, y1: area.top, y2: area.bottom, class: 'event' });
      const label = svgText(area.root, {
        x: nearRightEdge ? at - 4 : at + 4,
        y: area.top + 12 + (i % 3) * 13,
        'text-anchor': nearRightEdge ? 'end' : 'start',
        class: 'event-label',
      }, String(event.label));
      tooltip(label, 't = ' + event.t + ' s: ' + event.label);
    });
  }

  /** Runs of consecutive plottable [t, v] points; a null value (nothing measured) breaks the line. */
  function segments(points) {
    const runs = [];
    let run = [];
    for (const p of points) {
      if (isNumber(p[0]) && isNumber(p[1])) {
        run.push(p);
      } else if (run.length > 0) {
        runs.push(run);
        run = [];
      }
    }
    if (run.length > 0) runs.push(run);
    return runs;
  }

  function line(area, runs, x, y, color) {
    const path = runs
      .filter((run) => run.length > 1)
      .map((run) => 'M' + run.map((p) => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join('L'))
      .join('');
    if (path) svg(area.root, 'path', { d: path, class: 'line ' + color });
    for (const run of runs.filter((r) => r.length === 1)) {
      svg(area.root, 'circle', { cx: x(run[0][0]), cy: y(run[0][1]), r: 2.5, class: 'dot ' + color });
    }
  }

  /** series: [{ key (a TimelinePoint field), label, color }]; values over time, events marked. */
  function timeChart(figure, unit, series) {
    const plotted = series.map((s) => ({ ...s, runs: segments(timeline.map((p) => [p.t, p[s.key]])) }));
    const count = plotted.reduce((n, s) => n + s.runs.reduce((m, run) => m + run.length, 0), 0);
    if (count === 0) return noData(figure);

    const times = timeline.map((p) => p.t).concat(events.map((e) => e.t)).filter(isNumber);
    const values = plotted.flatMap((s) => s.runs.flat().map((p) => p[1]));
    const tTicks = ticksUpTo(maxOf(times), 8);
    const vTicks = ticksUpTo(maxOf(values), 5);
    const area = plotArea(figure, 58);
    const x = linear(tTicks[tTicks.length - 1], area.left, area.right);
    const y = linear(vTicks[vTicks.length - 1], area.bottom, area.top);

    valueAxisLeft(area, vTicks, y, unit);
    valueAxisBottom(area, tTicks, x, 'time since start (s)');
    eventMarks(area, x);
    for (const s of plotted) line(area, s.runs, x, y, s.color);
    legend(area, plotted);
    return count;
  }

  /** "≤ 50" for a bucket; "> 5k" for an open last one (JSON turns an Infinity bound into null). */
  function bucketBound(bars, i) {
    if (isNumber(bars[i].le)) return '≤ ' + tickLabel(bars[i].le);
    const previous = i > 0 ? bars[i - 1].le : null;
    return isNumber(previous) ? '> ' + tickLabel(previous) : 'any';
  }

  /** buckets: [{ le, count }], count of samples above the previous bound and ≤ le ms. */
  function histogram(figure, buckets, unit) {
    const bars = (Array.isArray(buckets) ? buckets : []).filter((b) => isNumber(b.count));
    if (bars.reduce((n, b) => n + b.count, 0) === 0) return noData(figure);

    const area = plotArea(figure, 58);
    const band = (area.right - area.left) / bars.length;
    const cTicks = ticksUpTo(maxOf(bars.map((b) => b.count)), 5);
    const y = linear(cTicks[cTicks.length - 1], area.bottom, area.top);
    const labelEvery = Math.ceil(bars.length / 12);

    valueAxisLeft(area, cTicks, y, unit);
    bars.forEach((bucket, i) => {
      const bound = bucketBound(bars, i);
      const rect = svg(area.root, 'rect', {
        x: area.left + i * band + band * 0.1,
        y: y(bucket.count),
        width: band * 0.8,
        height: area.bottom - y(bucket.count),
        class: 'bar',
      });
      tooltip(rect, bound + ' ms: ' + bucket.count);
      if (i % labelEvery === 0) {
        svgText(area.root, { x: area.left + (i + 0.5) * band, y: area.bottom + 17, 'text-anchor': 'middle' }, bound.replace('≤ ', ''));
      }
    });
    bottomAxisLine(area, 'latency (ms, bucket upper bound)');
    return bars.length;
  }

  /**
   * errors: { code: count }; one horizontal bar per code, most frequent first. expected:
   * { reason, counts } of a planned disruption (a broker restart): grey bars, labelled so.
   */
  function errorBars(figure, errors, expected) {
    const counted = (entries, planned) => entries.filter((entry) => isNumber(entry[1]) && entry[1] > 0).map((entry) => [entry[0], entry[1], planned]);
    const all = counted(Object.entries(errors || {}), false)
      .concat(counted(Object.entries((expected && expected.counts) || {}), true))
      .sort((a, b) => b[1] - a[1]);
    if (all.length === 0) return noData(figure);
    const shown = all.slice(0, MAX_ERROR_BARS);

    const area = plotArea(figure, 200, 14);
    const band = Math.min(32, (area.bottom - area.top) / shown.length);
    const cTicks = ticksUpTo(shown[0][1], 6);
    const x = linear(cTicks[cTicks.length - 1], area.left, area.right);

    for (const v of cTicks) svg(area.root, 'line', { x1: x(v), x2: x(v), y1: area.top, y2: area.bottom, class: 'grid' });
    shown.forEach(([code, count, planned], i) => {
      const middle = area.top + (i + 0.5) * band;
      const label = planned ? code + ' (expected)' : code;
      const name = svgText(area.root, { x: area.left - 6, y: middle + 4, 'text-anchor': 'end' }, label.length > 30 ? label.slice(0, 29) + '…' : label);
      tooltip(name, planned ? code + ': ' + expected.reason : code);
      const rect = svg(area.root, 'rect', { x: area.left, y: middle - band * 0.35, width: x(count) - area.left, height: band * 0.7, class: planned ? 'bar expected' : 'bar error' });
      tooltip(rect, code + ': ' + count + (planned ? ' (' + expected.reason + ')' : ''));
      svgText(area.root, { x: x(count) + 4, y: middle + 4 }, String(count));
    });
    if (all.length > shown.length) {
      svgText(area.root, { x: area.right, y: area.bottom - 4, 'text-anchor': 'end' }, '+' + (all.length - shown.length) + ' more codes in summary.json');
    }
    svg(area.root, 'line', { x1: area.left, x2: area.left, y1: area.top, y2: area.bottom, class: 'axis' });
    valueAxisBottom(area, cTicks, x, 'errors (count)');
    return shown.length;
  }

  const charts = {
    'connected': (f) => timeChart(f, 'devices', [{ key: 'connected', label: 'connected', color: 'c0' }]),
    'message-rate': (f) => timeChart(f, 'messages/s', [
      { key: 'sentPerS', label: 'sent/s', color: 'c0' },
      { key: 'receivedPerS', label: 'received/s', color: 'c1' },
    ]),
    'latency': (f) => timeChart(f, 'latency (ms)', [
      { key: 'p50', label: 'p50', color: 'c0' },
      { key: 'p99', label: 'p99', color: 'c1' },
    ]),
    'enrollment-latency': (f) => histogram(f, summary.histograms && summary.histograms.enrollmentMs, 'enrollments'),
    'connect-latency': (f) => histogram(f, summary.histograms && summary.histograms.connectMs, 'connections'),
    'errors': (f) => errorBars(f, summary.errors, summary.expectedErrors),
  };

  for (const figure of document.querySelectorAll('[data-chart]')) {
    const name = figure.getAttribute('data-chart');
    try {
      if (!Object.prototype.hasOwnProperty.call(charts, name)) throw new Error('no drawing for chart ' + name);
      figure.setAttribute('data-points', String(charts[name](figure)));
      figure.setAttribute('data-drawn', 'true');
    } catch (err) {
      figure.setAttribute('data-drawn', 'false');
      figure.setAttribute('data-error', String((err && err.message) || err));
      const message = document.createElement('p');
      message.className = 'chart-error';
      message.textContent = 'This chart could not be drawn: ' + figure.getAttribute('data-error');
      figure.appendChild(message);
    }
  }
})();
`;
