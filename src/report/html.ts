/**
 * Building blocks of the self-contained HTML reports (`foresight replay --html`, the run report of
 * `foresight start`): escaped tables, line/point charts as inline SVG and the page shell. No
 * script and no network, so a report opens anywhere, from a file, as it was written.
 */

/** Escapes text for HTML content and attribute values. */
export const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** A table; the first column is left-aligned (labels), the others right-aligned (figures). */
export function htmlTable(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<td class="l">${esc(c)}</td>` : `<td>${esc(c)}</td>`)).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

/** One series of {@link svgChart}. */
export interface Series {
  /** Legend text. */
  name: string;
  /** Stroke and fill colour (CSS). */
  color: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  /** Dashed line. Default false. */
  dash?: boolean;
  /** Draw a dot per point. Default false. */
  points?: boolean;
  /** Line width, px; 0 with `points` draws dots only. Default 1.5. */
  width?: number;
}

/** Options of {@link svgChart}. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Width, px. Default 900. */
  width?: number;
  /** Height, px. Default 360. */
  height?: number;
  /** Tick label of an x value. Default: rounded to an integer. */
  xFmt?: (v: number) => string;
  /** Tick label of a y value. Default: rounded to an integer. */
  yFmt?: (v: number) => string;
  /** Lowest y drawn. Default: the smallest value. */
  yMin?: number;
}

/** A line/point chart as an SVG string (non-finite points are skipped). */
export function svgChart(o: ChartOptions): string {
  const W = o.width ?? 900;
  const H = o.height ?? 360;
  const m = { l: 70, r: 220, t: 30, b: 45 };
  let x0 = Infinity, x1 = -Infinity, y0 = o.yMin ?? Infinity, y1 = -Infinity;
  for (const s of o.series)
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i];
      const y = s.ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      if (o.yMin === undefined) y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  if (!Number.isFinite(x0)) (x0 = 0), (x1 = 1);
  if (!Number.isFinite(y0)) (y0 = 0), (y1 = 1);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const xf = o.xFmt ?? ((v: number) => v.toFixed(0));
  const yf = o.yFmt ?? ((v: number) => v.toFixed(0));
  const parts: string[] = [];
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="#fff" stroke="#ccc"/>`);
  for (let i = 0; i <= 5; i++) {
    const xv = x0 + ((x1 - x0) * i) / 5;
    const yv = y0 + ((y1 - y0) * i) / 5;
    parts.push(`<line x1="${sx(xv)}" y1="${m.t}" x2="${sx(xv)}" y2="${m.t + ph}" stroke="#eee"/>`);
    parts.push(`<line x1="${m.l}" y1="${sy(yv)}" x2="${m.l + pw}" y2="${sy(yv)}" stroke="#eee"/>`);
    parts.push(`<text x="${sx(xv)}" y="${m.t + ph + 16}" text-anchor="middle">${esc(xf(xv))}</text>`);
    parts.push(`<text x="${m.l - 6}" y="${sy(yv) + 4}" text-anchor="end">${esc(yf(yv))}</text>`);
  }
  o.series.forEach((s, k) => {
    const pts: string[] = [];
    for (let i = 0; i < s.xs.length; i++) if (Number.isFinite(s.xs[i]) && Number.isFinite(s.ys[i])) pts.push(`${sx(s.xs[i]).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`);
    if (pts.length > 1 && !(s.points && s.width === 0))
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}"${s.dash ? ' stroke-dasharray="5,3"' : ""} points="${pts.join(" ")}"/>`);
    if (s.points) for (const p of pts) parts.push(`<circle cx="${p.split(",")[0]}" cy="${p.split(",")[1]}" r="3.5" fill="${s.color}"/>`);
    const ly = m.t + 14 + k * 18;
    parts.push(`<line x1="${W - m.r + 10}" y1="${ly - 4}" x2="${W - m.r + 30}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ""}/>`);
    parts.push(`<text x="${W - m.r + 35}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + ph / 2})">${esc(o.yLabel)}</text>`);
  parts.push(`<text x="${m.l}" y="18" font-weight="bold">${esc(o.title)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">${parts.join("")}</svg>`;
}

/** The page's style: tables, met/missed target marks, inline code. */
const STYLE =
  "body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:12px}td.l,th:first-child{text-align:left}th{background:#f4f4f4}.met{color:#2a7d2a}.miss{color:#b00020;font-weight:bold}code{background:#f4f4f4;padding:1px 4px}";

/** A whole self-contained page: `title` (escaped here) and `body` (HTML as given). */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${STYLE}</style>
</head><body>
${body}
</body></html>
`;
}
