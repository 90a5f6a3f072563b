import Foundation
import Queue

/// Column access for rendering: NULL reads as nil ("–" in HTML); a column the query does not
/// return is a bug in the page, which fails loudly (in debug builds and tests) instead of
/// rendering "–".
extension PostgresRow {
    func text(_ name: String) -> String? { value(name) }
    func double(_ name: String) -> Double? { value(name).flatMap { Double(postgresText: $0) } }
    func int64(_ name: String) -> Int64? { value(name).flatMap { Int64($0) } }
    /// A text column, HTML-escaped ("–" when NULL).
    func html(_ name: String) -> String { value(name).map(HTML.escape) ?? "–" }

    private func value(_ name: String) -> String? {
        assert(columns.contains(name), "the page reads column \(name), which its query does not return: \(columns)")
        return self[name]
    }
}

/// A short label for a recipe as stored (`{"stages": [{"prune": {"method": "wanda", …}}, …]}`):
/// `prune wanda 0.5 → export gguf q4_k_m`.
enum RecipeLabel {
    static func of(_ json: String?) -> String {
        guard let json, let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            return "–"
        }
        guard let stages = obj["stages"] as? [[String: Any]] else { return obj.keys.sorted().joined(separator: " ") }
        return stages.compactMap { stage -> String? in
            guard let (name, value) = stage.first else { return nil }
            let fields = value as? [String: Any] ?? [:]
            let parts =
                ["method", "format", "type", "sparsity", "bits", "scheme", "group_size"].compactMap { k in
                    fields[k].map { "\($0)" }
                }
                + (fields["n"].flatMap { n in fields["m"].map { "\(n):\($0)" } }.map { [$0] } ?? [])
            return ([name] + parts).joined(separator: " ")
        }.joined(separator: " → ")
    }
}
