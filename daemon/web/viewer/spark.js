// Small inline SVG charts (sparklines) of per-minute counts. Built with DOM calls; any
// text (the tooltip) is a text node.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

function points(values, max, width, height) {
  const step = values.length > 1 ? width / (values.length - 1) : width;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`);
}

/**
 * A chart of `series` ([{name, values, area}]), all on one scale, with `title` as its
 * tooltip and accessible name. Each series is drawn with the class `line-<name>`.
 */
export function sparkline(series, title, { width = 180, height = 36 } = {}) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const chart = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", preserveAspectRatio: "none" });
  const label = svg("title");
  label.textContent = title;
  chart.append(label);
  for (const s of series) {
    if (!s.values.length) continue;
    const line = points(s.values, max, width, height);
    if (s.area) {
      chart.append(svg("polygon", { class: `area-${s.name}`, points: [`0,${height}`, ...line, `${width},${height}`].join(" ") }));
    }
    chart.append(svg("polyline", { class: `line-${s.name}`, points: line.join(" "), fill: "none" }));
  }
  return chart;
}
