// Self-contained HTML report building blocks shared by `foresight replay` and `foresight start`.
export { type ChartOptions, esc, htmlPage, htmlTable, type Series, svgChart } from "./html.ts";
