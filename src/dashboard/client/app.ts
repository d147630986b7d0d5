/// <reference lib="dom" />
// The dashboard in the browser: one uPlot chart per pool (demand, forecast, upper bound, capacity
// now, capacity decided), one for throttles and exceedances, the top users and health. Points
// arrive as server-sent events from /dashboard/events. Bundled by esbuild (no CDN).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import type { DashboardPoint } from "../types.ts";

const MAX_POINTS = 600;
// Lines only: markers clutter 600 points.
const POOL_SERIES = [
  { label: "demand/s", stroke: "#1f77b4", width: 2, points: { show: false } },
  { label: "forecast/s", stroke: "#ff7f0e", width: 1.5, points: { show: false } },
  { label: "upper/s", stroke: "#ff7f0e", width: 1, dash: [4, 4], points: { show: false } },
  { label: "capacity now/s", stroke: "#2ca02c", width: 2, points: { show: false } },
  { label: "capacity decided/s", stroke: "#9467bd", width: 1.5, dash: [2, 2], points: { show: false } },
];

interface PoolChart {
  plot: uPlot;
  data: number[][];
  info: HTMLElement;
}

const pools = new Map<string, PoolChart>();
let eventsPlot: uPlot | undefined;
const eventsData: number[][] = [[], [], []];
const stats = { points: 0, errors: 0 };
// Tests read this to know the charts received live points.
(window as unknown as { __dashboard: typeof stats }).__dashboard = stats;

function width(el: HTMLElement): number {
  return Math.max(320, el.clientWidth - 24);
}

function poolChart(name: string): PoolChart {
  let c = pools.get(name);
  if (c) return c;
  const card = document.createElement("div");
  card.className = "card";
  const h = document.createElement("h2");
  h.textContent = `pool ${name}`;
  const info = document.createElement("div");
  info.className = "info";
  card.append(h, info);
  document.getElementById("pools")!.append(card);
  const data: number[][] = [[], [], [], [], [], []];
  const plot = new uPlot(
    { width: width(card), height: 220, series: [{}, ...POOL_SERIES], axes: [{}, { label: "requests/s" }], scales: { x: { time: true } } },
    data as uPlot.AlignedData,
    card,
  );
  // The grid reflows as pools appear; keep each chart as wide as its card.
  new ResizeObserver(() => plot.setSize({ width: width(card), height: 220 })).observe(card);
  c = { plot, data, info };
  pools.set(name, c);
  return c;
}

function push(arr: number[][], values: number[]): void {
  values.forEach((v, i) => {
    arr[i].push(v);
    if (arr[i].length > MAX_POINTS) arr[i].shift();
  });
}

function apply(p: DashboardPoint, redraw: boolean): void {
  const t = p.tMs / 1000;
  for (const pool of p.pools) {
    const c = poolChart(pool.pool);
    push(c.data, [t, pool.demandPerSec, pool.forecastPerSec, pool.upperPerSec, pool.capacityNowPerSec, pool.capacityDecidedPerSec]);
    c.info.textContent = `replicas: Foresight ${pool.replicasDecided} · reactive floor ${pool.replicasReactive}`;
    if (redraw) c.plot.setData(c.data as uPlot.AlignedData);
  }
  push(eventsData, [t, p.throttlesPerSec, p.exceedancesPerSec]);
  if (!eventsPlot) {
    const el = document.getElementById("events")!;
    eventsPlot = new uPlot(
      {
        width: width(el.parentElement!),
        height: 180,
        series: [{}, { label: "throttles/s", stroke: "#d62728", width: 2 }, { label: "exceedances/s", stroke: "#8c564b", width: 1.5 }],
        scales: { x: { time: true } },
      },
      eventsData as uPlot.AlignedData,
      el,
    );
  } else if (redraw) eventsPlot.setData(eventsData as uPlot.AlignedData);
  if (redraw) {
    const tbody = document.querySelector("#top tbody")!;
    tbody.replaceChildren(
      ...p.topUsers.map((u) => {
        const tr = document.createElement("tr");
        for (const v of [u.user, u.forecastPerSec.toFixed(2), u.upperPerSec.toFixed(2), u.observedPerSec.toFixed(2)]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
    const dl = document.getElementById("health")!;
    dl.replaceChildren(
      ...Object.entries(p.health).flatMap(([k, v]) => {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString() : v.toFixed(2)) : String(v);
        return [dt, dd];
      }),
    );
    document.getElementById("status")!.textContent = `live · ${new Date(p.tMs).toLocaleTimeString()} · ${stats.points} points`;
  }
  stats.points++;
}

const source = new EventSource("/dashboard/events");
source.addEventListener("snapshot", (e) => {
  const points = JSON.parse((e as MessageEvent).data) as DashboardPoint[];
  points.forEach((p, i) => apply(p, i === points.length - 1));
});
source.addEventListener("point", (e) => apply(JSON.parse((e as MessageEvent).data) as DashboardPoint, true));
source.onerror = () => {
  stats.errors++;
  document.getElementById("status")!.textContent = "disconnected (retrying)";
};
