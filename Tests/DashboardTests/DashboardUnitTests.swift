import Foundation
import Testing
@testable import Dashboard
import NIOHTTP1

/// The dashboard's parsers and chart logic, without a server: the request target, the access token,
/// escaping, recipe labels and the Pareto front.
@Suite struct DashboardUnitTests {
    @Test func splitsAndDecodesTheRequestTarget() throws {
        let headers = HTTPHeaders([("Host", "h"), ("Cookie", "a=1; squeeze_token=t0k")])
        let r = try #require(HTTPRequest(method: "GET", target: "/batches/x%20y?page=2&token=a%2Bb+c", headers: headers))
        #expect(r.method == "GET" && r.path == "/batches/x y")
        #expect(r.query["page"] == "2" && r.query["token"] == "a+b c")
        #expect(r.headers["host"] == "h" && r.cookie("squeeze_token") == "t0k" && r.cookie("b") == nil)
        #expect(HTTPRequest(method: "GET", target: "nopath", headers: headers) == nil)
        #expect(HTTPRequest(method: "GET", target: "/%zz", headers: headers) == nil)
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("127.0.0.1:8080")?.isLoopback == true)
        #expect(ListenAddress("localhost:0")?.host == "127.0.0.1")
        #expect(ListenAddress("0.0.0.0:9100")?.isLoopback == false)
        #expect(ListenAddress("example.com:80") == nil && ListenAddress("127.0.0.1") == nil && ListenAddress("1.2.3.4:70000") == nil)
    }

    @Test func tokenComparison() {
        #expect(DashboardServer.same("abcdefghijklmnop", "abcdefghijklmnop"))
        #expect(!DashboardServer.same("abcdefghijklmnop", "abcdefghijklmnoq"))
        #expect(!DashboardServer.same("abc", "abcd") && !DashboardServer.same("", "x"))
    }

    @Test func escapesMarkup() {
        #expect(HTML.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test func labelsRecipes() {
        let json = #"{"stages":[{"prune":{"method":"wanda","sparsity":0.5,"targets":["*"]}},{"export":{"format":"gguf","type":"q4_k_m"}}]}"#
        #expect(RecipeLabel.of(json) == "prune wanda 0.5 → export gguf q4_k_m")
        #expect(RecipeLabel.of(#"{"stages":[{"prune":{"method":"sparsegpt","n":2,"m":4}}]}"#) == "prune sparsegpt 2:4")
        #expect(RecipeLabel.of(nil) == "–" && RecipeLabel.of("not json") == "–")
    }

    @Test func paretoFrontKeepsOnlyUnbeatenPoints() {
        func p(_ x: Double, _ y: Double) -> SVGChart.Point { SVGChart.Point(x: x, y: y, href: "\(x)/\(y)", title: "") }
        let pts = [p(100, 1.5), p(50, 2.0), p(80, 1.4), p(120, 1.45), p(200, 1.1), p(60, 2.5), p(50, 2.2)]
        let lower = SVGChart.paretoFront(pts, higherIsBetter: false).map(\.href)
        #expect(lower == ["50.0/2.0", "80.0/1.4", "200.0/1.1"])
        let higher = SVGChart.paretoFront(pts, higherIsBetter: true).map(\.href)
        #expect(higher == ["50.0/2.2", "60.0/2.5"])
    }
}
