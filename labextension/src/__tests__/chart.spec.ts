/** Chart geometry and text formats. */
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
import { formatDuration, pageLabel } from '../format';

describe('chart geometry', () => {
  it('covers every series and widens flat ranges', () => {
    expect(
      dataRange([
        [
          { x: 1, y: 5 },
          { x: 4, y: 2 }
        ],
        [{ x: 0, y: 9 }]
      ])
    ).toEqual({ xMin: 0, xMax: 4, yMin: 2, yMax: 9 });
    expect(dataRange([[{ x: 3, y: 2 }]])).toEqual({ xMin: 2, xMax: 4, yMin: 1.8, yMax: 2.2 });
    expect(dataRange([[{ x: 3, y: 0 }]])).toEqual({ xMin: 2, xMax: 4, yMin: -1, yMax: 1 });
    expect(dataRange([[], [{ x: NaN, y: 1 }]])).toBeNull();
  });

  it('projects the range onto the plot area with y growing upwards', () => {
    const project = projector({ xMin: 0, xMax: 10, yMin: 0, yMax: 1 });
    const { left, right, top, bottom } = DEFAULT_BOX.margin;
    expect(project({ x: 0, y: 0 })).toEqual({ x: left, y: DEFAULT_BOX.height - bottom });
    expect(project({ x: 10, y: 1 })).toEqual({ x: DEFAULT_BOX.width - right, y: top });
    const line = polylinePoints(
      [
        { x: 0, y: 0 },
        { x: 10, y: 1 }
      ],
      project
    );
    expect(line).toBe(`${left},${DEFAULT_BOX.height - bottom} ${DEFAULT_BOX.width - right},${top}`);
  });

  it('downsamples keeping the first and last points', () => {
    const points = Array.from({ length: 101 }, (_, i) => i);
    const few = downsample(points, 11);
    expect(few).toHaveLength(11);
    expect(few[0]).toBe(0);
    expect(few[10]).toBe(100);
    expect(downsample(points, 500)).toBe(points);
  });

  it('finds the point nearest to x', () => {
    const points = [0, 10, 20, 30].map(x => ({ x, y: x * 2 }));
    expect(nearestPoint(points, 12)).toEqual({ x: 10, y: 20 });
    expect(nearestPoint(points, 16)).toEqual({ x: 20, y: 40 });
    expect(nearestPoint(points, -5)).toEqual({ x: 0, y: 0 });
    expect(nearestPoint(points, 99)).toEqual({ x: 30, y: 60 });
    expect(nearestPoint([], 1)).toBeNull();
  });

  it('formats axis numbers compactly', () => {
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber(0.123456)).toBe('0.1235');
    expect(formatNumber(123456)).toBe('1.23e+5');
    expect(formatNumber(0.00001)).toBe('1.00e-5');
  });
});

describe('formats', () => {
  it('formats durations', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(12.7)).toBe('12s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(3720)).toBe('1h 02m');
  });

  it('labels list pages', () => {
    expect(pageLabel(0, 50, 120)).toBe('1–50 of 120');
    expect(pageLabel(100, 20, 120)).toBe('101–120 of 120');
    expect(pageLabel(0, 0, 0)).toBe('0 of 0');
  });
});

describe('fitLabels', () => {
  it('widens the left margin for long y labels only', () => {
    expect(fitLabels(DEFAULT_BOX, ['1', '2'])).toBe(DEFAULT_BOX);
    const wide = fitLabels(DEFAULT_BOX, ['-0.004912', '-0.008899']);
    expect(wide.margin.left).toBeGreaterThan(DEFAULT_BOX.margin.left);
    expect(wide.margin.left).toBeGreaterThanOrEqual(8 + 9 * 6.5);
    expect(wide.width).toBe(DEFAULT_BOX.width);
  });
});
