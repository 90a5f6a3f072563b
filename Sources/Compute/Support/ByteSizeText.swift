import Foundation

/// Sizes as people write them: `512M`, `8G`, `1.5GiB`, `90MB` (binary units: K, M, G, T are
/// powers of 1,024, with or without `B`/`iB`), or a plain byte count.
public enum ByteSizeText {
    /// The byte count `text` names; nil when it is not a positive size below 9 EB.
    public static func bytes(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("K", 1024), ("M", 1_048_576), ("G", 1_073_741_824), ("T", 1_099_511_627_776)]
        let u = text.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        for (suffix, factor) in units where u.hasSuffix(suffix) {
            guard let v = Double(u.dropLast()), v > 0, v * factor < 9e18 else { return nil }
            return Int64(v * factor)
        }
        guard let v = Int64(u), v > 0 else { return nil }
        return v
    }
}
