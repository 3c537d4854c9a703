import React, { useMemo, useState } from 'react';

import {
  DEFAULT_BOX,
  dataRange,
  downsample,
  fitLabels,
  formatNumber,
  nearestPoint,
  polylinePoints,
  projector
} from '../chart';
import type { IPoint } from '../chart';

/** One line of a chart. */
export interface ISeries {
  name: string;
  points: readonly IPoint[];
}

/** Points drawn per line at most; hovering still reads every point. */
const MAX_DRAWN_POINTS = 1000;

/**
 * A hand-written SVG line chart: x and y axes with their min and max, one polyline per
 * series (the first is the main one), and the values nearest the pointer on hover.
 */
export function LineChart(props: {
  series: readonly ISeries[];
  title: string;
  /** Name of the metric, the `data-metric` test hook. */
  metric?: string;
  xLabel?: string;
}) {
  const xLabel = props.xLabel ?? 'step';
  const [hoverX, setHoverX] = useState<number | null>(null);
  const geometry = useMemo(() => {
    const range = dataRange(props.series.map(s => s.points));
    if (!range) {
      return null;
    }
    const box = fitLabels(DEFAULT_BOX, [formatNumber(range.yMin), formatNumber(range.yMax)]);
    const project = projector(range, box);
    const lines = props.series.map(s =>
      polylinePoints(downsample(s.points, MAX_DRAWN_POINTS), project)
    );
    return { range, project, lines, box };
  }, [props.series]);
  const box = geometry?.box ?? DEFAULT_BOX;

  const { left, right, top, bottom } = box.margin;
  const plotRight = box.width - right;
  const plotBottom = box.height - bottom;

  const onMove = (event: React.MouseEvent<SVGSVGElement>): void => {
    if (!geometry) {
      return;
    }
    const rect = event.currentTarget.getBoundingClientRect();
    const svgX = ((event.clientX - rect.left) / rect.width) * box.width;
    const fraction = Math.min(1, Math.max(0, (svgX - left) / (plotRight - left)));
    const { xMin, xMax } = geometry.range;
    setHoverX(xMin + fraction * (xMax - xMin));
  };

  const hovered =
    geometry && hoverX !== null
      ? props.series
          .map((s, i) => ({ series: s, index: i, point: nearestPoint(s.points, hoverX) }))
          .filter(h => h.point !== null)
      : [];
  const tooltip = hovered.length
    ? `${xLabel} ${formatNumber(hovered[0].point!.x)}: ` +
      hovered
        .map(h => (props.series.length > 1 ? `${h.series.name} ` : '') + formatNumber(h.point!.y))
        .join(', ')
    : '';

  return (
    <div className="jp-cloudml-chart" data-metric={props.metric ?? props.title}>
      <div className="jp-cloudml-chart-title">
        <span>{props.title}</span>
        {props.series.length > 1 && (
          <span className="jp-cloudml-chart-legend">
            {props.series.map((s, i) => (
              <span key={s.name} className={`jp-cloudml-legend jp-cloudml-series-${i}`}>
                {s.name}
              </span>
            ))}
          </span>
        )}
      </div>
      <svg
        viewBox={`0 0 ${box.width} ${box.height}`}
        role="img"
        aria-label={props.title}
        onMouseMove={onMove}
        onMouseLeave={() => setHoverX(null)}
      >
        <line className="jp-cloudml-axis" x1={left} y1={top} x2={left} y2={plotBottom} />
        <line
          className="jp-cloudml-axis"
          x1={left}
          y1={plotBottom}
          x2={plotRight}
          y2={plotBottom}
        />
        {geometry ? (
          <>
            <text className="jp-cloudml-axis-label" x={left - 4} y={top + 8} textAnchor="end">
              {formatNumber(geometry.range.yMax)}
            </text>
            <text className="jp-cloudml-axis-label" x={left - 4} y={plotBottom} textAnchor="end">
              {formatNumber(geometry.range.yMin)}
            </text>
            <text className="jp-cloudml-axis-label" x={left} y={box.height - 6} textAnchor="start">
              {formatNumber(geometry.range.xMin)}
            </text>
            <text
              className="jp-cloudml-axis-label"
              x={(left + plotRight) / 2}
              y={box.height - 6}
              textAnchor="middle"
            >
              {xLabel}
            </text>
            <text
              className="jp-cloudml-axis-label"
              x={plotRight}
              y={box.height - 6}
              textAnchor="end"
            >
              {formatNumber(geometry.range.xMax)}
            </text>
            {geometry.lines.map((points, i) => (
              <polyline
                key={i}
                className={`jp-cloudml-line jp-cloudml-series-${i}`}
                points={points}
              />
            ))}
            {hovered.map(h => {
              const p = geometry.project(h.point!);
              return (
                <circle
                  key={h.index}
                  className={`jp-cloudml-marker jp-cloudml-series-${h.index}`}
                  cx={p.x}
                  cy={p.y}
                  r={3}
                />
              );
            })}
            {tooltip && (
              <text className="jp-cloudml-tooltip" x={plotRight - 2} y={top + 8} textAnchor="end">
                {tooltip}
              </text>
            )}
          </>
        ) : (
          <text
            className="jp-cloudml-axis-label"
            x={(left + plotRight) / 2}
            y={(top + plotBottom) / 2}
            textAnchor="middle"
          >
            No values yet
          </text>
        )}
      </svg>
    </div>
  );
}
