import Foundation

/// Inline SVG charts: line series over time, a size-against-quality scatter with its Pareto front,
/// bars along a model's depth, and an attempts timeline. Plain SVG, no scripts.
enum SVGChart {
    struct Series { let name: String, color: String, points: [(x: Double, y: Double)] }
    struct Point { let x: Double, y: Double, href: String, title: String }
    struct Span { let start: Double, end: Double, label: String, color: String }

    static let (left, right, top, bottom) = (56.0, 30.0, 22.0, 34.0)

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A compact tick label: 1.2k, 3.4M, 0.05.
    static func tick(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e9 { return String(format: "%.1fG", v / 1e9) }
        if a >= 1e6 { return String(format: "%.1fM", v / 1e6) }
        if a >= 1e4 { return String(format: "%.0fk", v / 1e3) }
        if a >= 100 || a == 0 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3g", v)
    }

    /// The frame: title, axes with 5 ticks on y (and x when `xTicks` is given), and the plot's scales.
    static func frame(
        width: Double, height: Double, title: String, x: ClosedRange<Double>, y: ClosedRange<Double>,
        xTick: (Double) -> String, yLabel: String, yTicks: Bool = true
    ) -> (svg: String, sx: (Double) -> Double, sy: (Double) -> Double) {
        let w = width - left - right, h = height - top - bottom
        let xs = x.upperBound > x.lowerBound ? x : x.lowerBound...(x.lowerBound + 1)
        let ys = y.upperBound > y.lowerBound ? y : y.lowerBound...(y.lowerBound + 1)
        let sx = { (v: Double) in left + (v - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * w }
        let sy = { (v: Double) in top + h - (v - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * h }
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 "
            + "\(Int(width)) \(Int(height))\">"
        s += "<text x=\"\(f(left))\" y=\"14\" font-weight=\"600\">\(HTML.escape(title))</text>"
        // The y axis's label runs up its left edge.
        s +=
            "<text transform=\"rotate(-90)\" x=\"\(f(-(top + h / 2)))\" y=\"11\" "
            + "text-anchor=\"middle\">\(HTML.escape(yLabel))</text>"
        for i in 0...4 {
            let v = ys.lowerBound + Double(i) / 4 * (ys.upperBound - ys.lowerBound), py = sy(v)
            if yTicks {
                s += "<line x1=\"\(f(left))\" x2=\"\(f(left + w))\" y1=\"\(f(py))\" y2=\"\(f(py))\" stroke=\"#eee\"/>"
                s += "<text x=\"\(f(left - 4))\" y=\"\(f(py + 4))\" text-anchor=\"end\">\(tick(v))</text>"
            }
            let vx = xs.lowerBound + Double(i) / 4 * (xs.upperBound - xs.lowerBound)
            s +=
                "<text x=\"\(f(sx(vx)))\" y=\"\(f(top + h + 16))\" "
                + "text-anchor=\"middle\">\(HTML.escape(xTick(vx)))</text>"
        }
        s += "<line x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(top + h))\" stroke=\"#99a\"/>"
        s += "<line x1=\"\(f(left))\" x2=\"\(f(left + w))\" y1=\"\(f(top + h))\" y2=\"\(f(top + h))\" stroke=\"#99a\"/>"
        return (s, sx, sy)
    }

    /// Line series sharing one x range (e.g. epoch seconds) with a legend.
    static func lines(
        _ series: [Series], title: String, x: ClosedRange<Double>, xTick: @escaping (Double) -> String,
        yLabel: String, width: Double = 620, height: Double = 200
    ) -> String {
        let maxY = max(1, series.flatMap { $0.points.map(\.y) }.max() ?? 1)
        let (head, sx, sy) = frame(
            width: width, height: height, title: title, x: x, y: 0...maxY, xTick: xTick, yLabel: yLabel)
        var s = head
        for (i, line) in series.enumerated() {
            let pts = line.points.map { "\(f(sx($0.x))),\(f(sy($0.y)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(pts)\"/>"
            s +=
                "<text x=\"\(f(width - right - 150 + Double(i) * 75))\" y=\"14\" style=\"fill:\(line.color)\">■ "
                + "\(HTML.escape(line.name))</text>"
        }
        return s + "</svg>"
    }

    /// Output size (x) against quality (y) with every point linking to its job and the Pareto front
    /// (points no other point beats on both) drawn as a line.
    static func scatter(
        _ points: [Point], front: [Point], title: String, xLabel: String, yLabel: String,
        width: Double = 620, height: Double = 320
    ) -> String {
        let xsMin = points.map(\.x).min() ?? 0, xsMax = points.map(\.x).max() ?? 1
        let ysMin = points.map(\.y).min() ?? 0, ysMax = points.map(\.y).max() ?? 1
        let padX = max((xsMax - xsMin) * 0.05, abs(xsMax) * 0.01 + 1e-9),
            padY = max((ysMax - ysMin) * 0.08, abs(ysMax) * 0.01 + 1e-9)
        let (head, sx, sy) = frame(
            width: width, height: height, title: title, x: (xsMin - padX)...(xsMax + padX),
            y: (ysMin - padY)...(ysMax + padY), xTick: { HTML.bytes(Int64($0)) }, yLabel: yLabel)
        var s =
            head
            + "<text x=\"\(f(width - right))\" y=\"\(f(height - 4))\" text-anchor=\"end\">\(HTML.escape(xLabel))</text>"
        s +=
            "<polyline class=\"pareto\" fill=\"none\" stroke=\"#e07a10\" stroke-width=\"2\" stroke-dasharray=\"5 3\" "
            + "points=\""
            + front.map { "\(f(sx($0.x))),\(f(sy($0.y)))" }.joined(separator: " ") + "\"/>"
        let onFront = Set(front.map(\.href))
        for p in points {
            let color = onFront.contains(p.href) ? "#e07a10" : "#3a7bd5"
            s +=
                "<a href=\"\(HTML.escape(p.href))\"><circle cx=\"\(f(sx(p.x)))\" cy=\"\(f(sy(p.y)))\" r=\"5\" "
                + "fill=\"\(color)\"><title>\(HTML.escape(p.title))</title></circle></a>"
        }
        return s + "</svg>"
    }

    /// The points no other point beats: smaller-or-equal size and better-or-equal quality, one of them strictly.
    static func paretoFront(_ points: [Point], higherIsBetter: Bool) -> [Point] {
        let better = { (a: Double, b: Double) in higherIsBetter ? a > b : a < b }
        var front: [Point] = []
        for p in points.sorted(by: { $0.x != $1.x ? $0.x < $1.x : better($0.y, $1.y) }) {
            if let last = front.last, !better(p.y, last.y) { continue }
            front.append(p)
        }
        return front
    }

    /// One bar per layer, in the model's order (nil values leave a gap), hover shows the tensor.
    static func bars(
        _ values: [(label: String, value: Double?)], title: String, yLabel: String, color: String,
        width: Double = 620, height: Double = 180
    ) -> String {
        let present = values.compactMap(\.value)
        let maxY = max(present.max() ?? 1, 1e-12)
        let n = Double(max(values.count, 1))
        let (head, sx, sy) = frame(
            width: width, height: height, title: title, x: 0...n, y: 0...maxY,
            xTick: { String(Int($0.rounded())) }, yLabel: yLabel)
        var s = head
        let bw = max(1, (sx(1) - sx(0)) * 0.8)
        for (i, v) in values.enumerated() {
            guard let y = v.value else { continue }
            s +=
                "<rect x=\"\(f(sx(Double(i))))\" y=\"\(f(sy(y)))\" width=\"\(f(bw))\" height=\"\(f(sy(0) - sy(y)))\" "
                + "fill=\"\(color)\"><title>\(HTML.escape(v.label)): \(tick(y))</title></rect>"
        }
        return s + "</svg>"
    }

    /// Horizontal bars on a shared time axis, one row per span (attempts of a job).
    static func timeline(_ spans: [Span], title: String, width: Double = 620) -> String {
        let t0 = spans.map(\.start).min() ?? 0, t1 = max(spans.map(\.end).max() ?? 1, t0 + 1)
        let height = top + bottom + Double(spans.count) * 24
        let (head, sx, _) = frame(
            width: width, height: height, title: title, x: t0...t1, y: 0...1,
            xTick: { "+" + HTML.seconds($0 - t0) }, yLabel: "", yTicks: false)
        var s = head
        for (i, span) in spans.enumerated() {
            let y = top + 4 + Double(i) * 24
            let x0 = sx(span.start), w = max(2, sx(span.end) - x0)
            s +=
                "<rect x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"16\" "
                + "fill=\"\(span.color)\"><title>\(HTML.escape(span.label))</title></rect>"
            s += "<text x=\"\(f(x0 + 4))\" y=\"\(f(y + 12))\" style=\"fill:#fff\">\(HTML.escape(span.label))</text>"
        }
        return s + "</svg>"
    }
}
