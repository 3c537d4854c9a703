/**
 * Geometry of the SVG line charts, kept apart from React so that it can be tested: data
 * ranges, projection into the plot box, downsampling and the point nearest the pointer.
 */
/** A point of a chart, in data coordinates. */
export interface IPoint {
  x: number;
  y: number;
}

/** The drawing box of a chart, in SVG user units. */
export interface IChartBox {
  width: number;
  height: number;
  /** Room for the axis labels: left, right, top, bottom. */
  margin: { left: number; right: number; top: number; bottom: number };
}

export const DEFAULT_BOX: IChartBox = {
  width: 400,
  height: 180,
  margin: { left: 52, right: 12, top: 10, bottom: 24 }
};

/** Approximate width of one character of an axis label, in SVG user units. */
const LABEL_CHAR_WIDTH = 6.5;

/** `box` with a left margin wide enough for the y-axis labels (e.g. "-0.004912"). */
export function fitLabels(box: IChartBox, yLabels: readonly string[]): IChartBox {
  const longest = Math.max(0, ...yLabels.map(label => label.length));
  const left = Math.max(box.margin.left, Math.ceil(8 + longest * LABEL_CHAR_WIDTH));
  return left === box.margin.left ? box : { ...box, margin: { ...box.margin, left } };
}

/** The data range a chart shows. */
export interface IRange {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
}

/** The range covering every point; a flat or single-point range is widened so it has area. */
export function dataRange(series: readonly (readonly IPoint[])[]): IRange | null {
  let xMin = Infinity;
  let xMax = -Infinity;
  let yMin = Infinity;
  let yMax = -Infinity;
  for (const points of series) {
    for (const { x, y } of points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        continue;
      }
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      yMin = Math.min(yMin, y);
      yMax = Math.max(yMax, y);
    }
  }
  if (xMin > xMax) {
    return null;
  }
  if (xMin === xMax) {
    xMin -= 1;
    xMax += 1;
  }
  if (yMin === yMax) {
    const pad = Math.abs(yMin) * 0.1 || 1;
    yMin -= pad;
    yMax += pad;
  }
  return { xMin, xMax, yMin, yMax };
}

/** Maps data coordinates to SVG coordinates inside the box's plot area (y grows upwards). */
export function projector(range: IRange, box: IChartBox = DEFAULT_BOX): (p: IPoint) => IPoint {
  const { left, right, top, bottom } = box.margin;
  const plotWidth = box.width - left - right;
  const plotHeight = box.height - top - bottom;
  return ({ x, y }) => ({
    x: left + ((x - range.xMin) / (range.xMax - range.xMin)) * plotWidth,
    y: top + (1 - (y - range.yMin) / (range.yMax - range.yMin)) * plotHeight
  });
}

/** The SVG `points` attribute of a polyline through these points. */
export function polylinePoints(points: readonly IPoint[], project: (p: IPoint) => IPoint): string {
  return points
    .filter(p => Number.isFinite(p.x) && Number.isFinite(p.y))
    .map(p => {
      const q = project(p);
      return `${round(q.x)},${round(q.y)}`;
    })
    .join(' ');
}

/** At most `max` points, evenly strided, always keeping the first and the last. */
export function downsample<T>(points: readonly T[], max: number): readonly T[] {
  if (points.length <= max || max < 2) {
    return points;
  }
  const stride = (points.length - 1) / (max - 1);
  const out: T[] = [];
  for (let i = 0; i < max; i++) {
    out.push(points[Math.round(i * stride)]);
  }
  return out;
}

/** The point whose x is closest to `x` (points sorted by x), or null when there is none. */
export function nearestPoint(points: readonly IPoint[], x: number): IPoint | null {
  if (!points.length) {
    return null;
  }
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].x < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo > 0 && Math.abs(points[lo - 1].x - x) <= Math.abs(points[lo].x - x)) {
    return points[lo - 1];
  }
  return points[lo];
}

/** A compact label for an axis or a tooltip value. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e5 || abs < 1e-3)) {
    return value.toExponential(2);
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  return String(Number(value.toPrecision(4)));
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
