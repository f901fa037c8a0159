// The page's only stylesheet. System fonts, so the page loads nothing; SVG colours are
// classes here because the page's Content-Security-Policy allows no inline style attributes.
export const REPORT_STYLE = `
:root { --pass: #15803d; --fail: #b91c1c; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --c0: #2563eb; --c1: #ea580c; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1400px; padding: 16px 24px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); }
h1 { margin: 0; font-size: 22px; }
h2 { margin: 28px 0 10px; font-size: 16px; }
.run { display: flex; align-items: center; justify-content: space-between; gap: 24px; padding: 16px 20px; border-radius: 8px; border: 2px solid; }
.run.pass { border-color: var(--pass); background: #f0fdf4; }
.run.fail { border-color: var(--fail); background: #fef2f2; }
.run-meta { margin: 4px 0 0; color: var(--muted); overflow-wrap: anywhere; }
.badge { font-size: 48px; font-weight: 800; letter-spacing: 2px; }
.run.pass .badge, tr.pass .result { color: var(--pass); }
.run.fail .badge, tr.fail .result { color: var(--fail); }
table.verdicts { border-collapse: collapse; min-width: 60%; }
.verdicts th, .verdicts td { text-align: left; padding: 6px 14px 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
.verdicts .result { font-weight: 700; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 0; }
.figure { padding: 8px 12px; border: 1px solid var(--line); border-radius: 6px; }
.figure dt { color: var(--muted); font-size: 12px; }
.figure dd { margin: 2px 0 0; font-size: 20px; font-weight: 600; }
.figure.bad dd { color: var(--fail); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.chart { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
.chart figcaption { font-weight: 600; margin-bottom: 4px; }
.chart svg { display: block; width: 100%; height: auto; }
.chart-error { color: var(--fail); }
.plot text { font-size: 11px; fill: var(--muted); }
.plot .axis-title { fill: var(--ink); }
.plot .axis { stroke: var(--ink); }
.plot .grid { stroke: var(--line); }
/* The second series is drawn thinner on top, so two that coincide (sent = received) both show. */
.plot .line { fill: none; }
.plot .line.c0 { stroke: var(--c0); stroke-width: 3; }
.plot .line.c1 { stroke: var(--c1); stroke-width: 1.5; }
.plot .dot.c0, .plot .swatch.c0, .plot .bar { fill: var(--c0); }
.plot .dot.c1, .plot .swatch.c1 { fill: var(--c1); }
.plot .bar.error { fill: var(--fail); }
.plot .bar.expected { fill: var(--muted); }
.plot .event { stroke: var(--ink); stroke-dasharray: 4 3; }
.plot .event-label { fill: var(--ink); }
.plot .no-data { font-size: 18px; fill: var(--muted); }
`;
