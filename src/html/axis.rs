//! The time axis of the timeline.
//!
//! The axis runs from the start to the verdict. The moments that matter are often
//! milliseconds apart near the start (readiness, the kill, the first exits) and a second
//! away from the end (the deadline a survivor outlived), so a linear axis would crush
//! the beginning into a few pixels. The axis is piecewise linear between the run's
//! moments instead, each stretch drawn as wide as the logarithm of its length (and the
//! start-up before the first moment no wider than an eighth): order is kept, long waits
//! still look long, close moments stay apart, and every label gives the exact time.

/// The part of the track (percent) the axis uses; the rest leaves room for arrowheads.
const SPAN: (f64, f64) = (1.0, 96.0);

/// Stretches of the axis are as wide as `ln(1 + length / RESOLUTION_MS)`.
const RESOLUTION_MS: f64 = 0.1;
/// The most of the axis the stretch before the first moment may take.
const START_SHARE: f64 = 0.12;

/// The time axis: piecewise linear between the run's moments, each stretch as wide as
/// the logarithm of its length (see the module docs).
#[derive(Debug)]
pub(super) struct Axis {
    /// (time in ms, position in percent of the track), increasing in both.
    stops: Vec<(f64, f64)>,
}

impl Axis {
    pub(super) fn new(moments: impl IntoIterator<Item = f64>) -> Axis {
        let mut times: Vec<f64> = moments
            .into_iter()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .chain([0.0])
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
        let mut widths: Vec<f64> = times
            .windows(2)
            .map(|w| (1.0 + (w[1] - w[0]) / RESOLUTION_MS).ln())
            .collect();
        let total: f64 = widths.iter().sum();
        // The start-up, up to the first moment, is the least interesting stretch: at
        // most a fixed share of the width.
        if widths.len() > 1 && widths[0] > START_SHARE * total {
            let rest = total - widths[0];
            widths[0] = rest * START_SHARE / (1.0 - START_SHARE);
        }
        let total: f64 = widths.iter().sum();
        let mut stops = vec![(times[0], SPAN.0)];
        let mut sum = 0.0;
        for (i, w) in widths.iter().enumerate() {
            sum += w;
            stops.push((times[i + 1], SPAN.0 + (SPAN.1 - SPAN.0) * sum / total));
        }
        Axis { stops }
    }

    /// The last moment: the axis's right end.
    pub(super) fn end(&self) -> f64 {
        self.stops.last().map_or(0.0, |s| s.0)
    }

    /// Where `t` (ms since the start) is, in percent of the track.
    pub(super) fn x(&self, t: f64) -> f64 {
        let i = self.stops.partition_point(|s| s.0 <= t);
        if i == 0 {
            return SPAN.0;
        }
        if i == self.stops.len() {
            return self.stops[i - 1].1;
        }
        let ((t0, x0), (t1, x1)) = (self.stops[i - 1], self.stops[i]);
        x0 + (x1 - x0) * (t - t0) / (t1 - t0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_keeps_order_and_ends_at_the_last_moment() {
        let axis = Axis::new([3.0, 3.4, 1003.4, 3.2]);
        assert_eq!(axis.end(), 1003.4);
        assert_eq!(axis.x(0.0), SPAN.0);
        assert_eq!(axis.x(1003.4), SPAN.1);
        assert_eq!(axis.x(5000.0), SPAN.1, "past the end stays at the end");
        let xs: Vec<f64> = [0.0, 1.0, 3.0, 3.2, 3.4, 100.0, 1003.4]
            .iter()
            .map(|&t| axis.x(t))
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
    }

    #[test]
    fn the_axis_keeps_close_moments_apart_where_a_linear_one_would_not() {
        // Readiness at 3 ms, the kill at 3.4 ms, the verdict a second later: linearly,
        // the kill would sit 0.04 % of the width right of readiness.
        let axis = Axis::new([3.0, 3.4, 1003.4]);
        let apart = axis.x(3.4) - axis.x(3.0);
        assert!(apart > 5.0, "{apart}");
        // The long wait still takes most of the width, and the start-up no more than
        // its share.
        let wait = axis.x(1003.4) - axis.x(3.4);
        assert!(wait > 60.0 && wait > 4.0 * apart, "{wait}");
        let start = axis.x(3.0) - axis.x(0.0);
        assert!(start <= START_SHARE * (SPAN.1 - SPAN.0) + 1e-9, "{start}");
    }

    #[test]
    fn a_run_of_one_moment_has_an_axis() {
        let axis = Axis::new([]);
        assert_eq!(axis.end(), 0.0);
        assert_eq!(axis.x(0.0), SPAN.0);
        assert_eq!(axis.x(f64::NAN), SPAN.0);
    }
}
