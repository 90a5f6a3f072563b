import Foundation

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
