//! A dependency-free SVG line chart of trust per node over epochs, drawn from the indexer's
//! `/nodes/{address}/trust` data (the README shows the one the demo writes).

use std::fmt::Write;

/// One line of the chart: a label and one value in [0, 1] per epoch (None: no data).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (e.g. a shortened address).
    pub label: String,
    /// Value per epoch, index = epoch.
    pub values: Vec<Option<f64>>,
}

const COLORS: [&str; 6] = [
    "#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285",
];

/// SVG document of the series; epochs on x, trust 0..1 on y.
pub fn trust_svg(title: &str, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 56.0, 170.0, 40.0, 44.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let epochs = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let x = |e: usize| left + plot_w * e as f64 / (epochs - 1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12" role="img" aria-label="{t}">"#,
        t = escape(title)
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for tick in 0..=5 {
        let v = tick as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{y0}" y2="{y0}" stroke="#e5e5e5"/><text x="{tx}" y="{ty}" text-anchor="end">{v:.1}</text>"##,
            x2 = left + plot_w,
            y0 = y(v),
            tx = left - 6.0,
            ty = y(v) + 4.0
        );
    }
    for e in 0..epochs {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{e}</text>"#,
            x(e),
            top + plot_h + 18.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
        left + plot_w / 2.0,
        h - 6.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">trust</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    for (i, line) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .filter_map(|(e, v)| v.map(|v| format!("{:.1},{:.1}", x(e), y(v))))
            .collect();
        if !points.is_empty() {
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{}"/>"#,
                points.join(" ")
            );
            for p in &points {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{px}" cy="{py}" r="3.5" fill="{color}"/>"#);
            }
        }
        let ly = top + 14.0 + 20.0 * i as f64;
        let lx = left + plot_w + 14.0;
        let _ = write!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{color}" stroke-width="2.5"/><text x="{}" y="{ly}">{}</text>"#,
            lx + 18.0,
            ly - 4.0,
            ly - 4.0,
            lx + 24.0,
            escape(&line.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_polyline_per_series_within_the_plot() {
        let svg = trust_svg(
            "trust <by> epoch",
            &[
                Series {
                    label: "a".into(),
                    values: vec![Some(0.2), Some(0.4), Some(0.5)],
                },
                Series {
                    label: "b".into(),
                    values: vec![Some(0.2), None, Some(0.1)],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("<circle").count(),
            5,
            "one marker per known value"
        );
        assert!(svg.contains("trust &lt;by&gt; epoch"), "title is escaped");
        // A value of 1.0 maps to the top of the plot, 0 to the bottom.
        assert!(trust_svg(
            "t",
            &[Series {
                label: "x".into(),
                values: vec![Some(1.0), Some(0.0)]
            }]
        )
        .contains("points=\"56.0,40.0 470.0,316.0\""));
    }
}
